// The pure parts of the deploy step: health settings, the health URL key and the gradual summary.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
	formatGradualSteps,
	healthUrlKey,
	planHealthPolicy,
	TOP_LEVEL_HEALTH_KEY,
} from "../../../ci/steps/deploy.ts";

describe("planHealthPolicy()", () => {
	it("defaults to 3 probes over 5 s within 60 s", () => {
		expect(planHealthPolicy({})).toEqual({ timeoutMs: 60_000, probes: 3, windowMs: 5000 });
	});
	it.each([
		{ args: { healthWindowSeconds: 60 }, message: /must be shorter than --health-timeout/ },
		{ args: { healthTimeoutSeconds: 3 }, message: /--health-window \(5 s\) must be shorter/ },
		{ args: { healthProbes: 0 }, message: /--health-probes must be a whole number/ },
		{ args: { healthProbes: 1.5 }, message: /--health-probes must be a whole number/ },
	])("refuses $args", ({ args, message }) => {
		expect(() => planHealthPolicy(args)).toThrow(message);
	});
});

describe("formatGradualSteps()", () => {
	const health = (good: number, attempts: number) => ({
		ok: good > 0,
		attempts,
		good,
		lastStatus: 200,
		lastBody: null,
		reason: "",
		noRoute: false,
		durationMs: 0,
	});
	it("lists each step with its probes and time, failures marked", () => {
		expect(
			formatGradualSteps([
				{ percentage: 0, via: "override", ok: true, durationMs: 3120, health: health(3, 3) },
				{ percentage: 50, via: "traffic", ok: false, durationMs: 10_000, health: health(1, 6) },
				{ percentage: 100, via: "override", ok: false, durationMs: 0, health: null, error: "x" },
			]),
		).toBe(
			"0 % override 3/3 in 3.1 s, 50 % traffic 1/6 in 10.0 s FAILED, 100 % override - in 0.0 s FAILED",
		);
	});
});

describe("healthUrlKey()", () => {
	it.each([
		{ env: undefined, key: "default" },
		{ env: "", key: "default" },
		{ env: "staging", key: "staging" },
	])("deploy.healthUrls key of env $env is $key", ({ env, key }) => {
		expect(healthUrlKey(env)).toBe(key);
	});
	it("is the key docs/configuration.md names for the top-level Worker", () => {
		const docs = readFileSync(new URL("../../../docs/configuration.md", import.meta.url), "utf8");
		const row = docs.split("\n").find((line) => line.startsWith("| `deploy.healthUrls`"));
		expect(row).toContain(`\`"${TOP_LEVEL_HEALTH_KEY}"\` for the top-level Worker`);
	});
});
