import { describe, expect, expectTypeOf, it } from "vitest";
import { renderJson } from "../../../ci/report/json.ts";
import type { StepResult } from "../../../ci/report/model.ts";
import { defineStep, makeStepResult, type StepContext } from "../../../ci/steps/_step.ts";

interface CountData {
	counted: number;
}

const countStep = defineStep<{ n: number }, CountData>({
	name: "count",
	run: async (_ctx, { n }) =>
		makeStepResult("count", performance.now(), {
			ok: n > 0,
			summary: `${n}`,
			findings: [],
			data: { counted: n },
		}),
});

const ctx: StepContext = { cwd: ".", env: {}, progress: () => {} };

describe("defineStep() / makeStepResult()", () => {
	it("types a step's data and reports it unchanged", async () => {
		const result = await countStep.run(ctx, { n: 3 });
		expectTypeOf(result).toEqualTypeOf<StepResult<CountData>>();
		expectTypeOf(result.data).toEqualTypeOf<CountData | undefined>();
		expect(result).toMatchObject({ name: "count", ok: true, summary: "3", data: { counted: 3 } });
		expect(result.durationMs).toBeGreaterThanOrEqual(0);
		const document = JSON.parse(
			renderJson({ command: "count", ok: true, durationMs: 1, steps: [result] }),
		);
		expect(document.steps[0].data).toEqual({ counted: 3 });
	});

	it("keeps Record<string, unknown> data by default", () => {
		expectTypeOf<StepResult["data"]>().toEqualTypeOf<Record<string, unknown> | undefined>();
	});
});
