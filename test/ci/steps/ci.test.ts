import { describe, expect, it } from "vitest";
import { D1ApiError, UserError } from "../../../ci/errors.ts";
import { defineStep, type StepContext } from "../../../ci/steps/_step.ts";
import { runStepSafely } from "../../../ci/steps/ci.ts";

const ctx: StepContext = { cwd: ".", env: {}, progress: () => {} };
const throwing = (error: unknown) =>
	defineStep<undefined>({
		name: "boom",
		run: async () => {
			throw error;
		},
	});

describe("runStepSafely()", () => {
	it.each([
		["a TypeError", new TypeError("x is undefined")],
		["a wrangler failure", new UserError("wrangler exited 1", "E_WRANGLER")],
		["a D1 5xx", new D1ApiError("D1 query failed (HTTP 503)", { status: 503 })],
	])("turns %s into a failed step, so the other steps still report", async (_, error) => {
		const result = await runStepSafely(throwing(error), ctx, undefined);
		expect(result).toMatchObject({
			name: "boom",
			ok: false,
			findings: [{ code: "STEP_ERROR", severity: "error", message: (error as Error).message }],
		});
	});

	it.each([
		["bad usage", new UserError("unknown flag")],
		["an invalid config", new UserError("wrangler.jsonc: bad", "E_CONFIG_INVALID")],
		["a refused token", new D1ApiError("HTTP 401", { status: 401 })],
	])("lets %s end the whole run (exit 2)", async (_, error) => {
		await expect(runStepSafely(throwing(error), ctx, undefined)).rejects.toBe(error);
	});
});
