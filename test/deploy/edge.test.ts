// The edge stand-in's routing rules (developers.cloudflare.com/workers/configuration/
// versions-and-deployments/version-overrides/ and gradual-deployments/).
import { describe, expect, it } from "vitest";
import { parseOverride, pickByPercentage } from "./_edge.ts";

const A = "aaaaaaaa-0000-4000-8000-000000000001";
const B = "bbbbbbbb-0000-4000-8000-000000000002";

describe("parseOverride()", () => {
	it.each([
		{ header: `app="${A}"`, script: "app", id: A },
		{ header: `other="${B}", app="${A}"`, script: "app", id: A },
		{ header: `app="${A}";q=1`, script: "app", id: A },
		{ header: `app=${A}`, script: "app", id: undefined },
		{ header: `other="${B}"`, script: "app", id: undefined },
		{ header: undefined, script: "app", id: undefined },
	])("$header → $id", ({ header, script, id }) => {
		expect(parseOverride(header, script)).toBe(id);
	});
});

describe("pickByPercentage()", () => {
	const split = [
		{ version_id: A, percentage: 10 },
		{ version_id: B, percentage: 90 },
	];
	it.each([
		{ draw: 0, id: A },
		{ draw: 9.99, id: A },
		{ draw: 10, id: B },
		{ draw: 99.99, id: B },
	])("draw $draw → $id", ({ draw, id }) => {
		expect(pickByPercentage(split, draw)).toBe(id);
	});
	it("never picks a version at 0 %", () => {
		const zero = [
			{ version_id: A, percentage: 0 },
			{ version_id: B, percentage: 100 },
		];
		for (let draw = 0; draw < 100; draw += 0.5) expect(pickByPercentage(zero, draw)).toBe(B);
	});
});
