// The pure parts of a gradual deploy: traffic steps, wrangler's version-upload output, URLs.
import { describe, expect, it } from "vitest";
import {
	DEFAULT_GRADUAL_STEPS,
	parseSteps,
	parseVersionUpload,
	workerUrlFromPreview,
} from "../../../ci/deploy/versions.ts";

describe("parseSteps()", () => {
	it.each([
		{ text: undefined, steps: [...DEFAULT_GRADUAL_STEPS] },
		{ text: "10,50,100", steps: [10, 50, 100] },
		{ text: "5%, 25%", steps: [5, 25, 100] },
		{ text: "100", steps: [100] },
	])("$text → $steps", ({ text, steps }) => {
		expect(parseSteps(text)).toEqual(steps);
	});

	it.each(["", "0,100", "50,10", "10,10,100", "ten", "10,,100", "101", "12.5"])(
		"refuses %j with a usage error",
		(text) => {
			expect(() => parseSteps(text)).toThrow(/--steps/);
		},
	);
});

// Written by wrangler 4.164 (`versions upload` with WRANGLER_OUTPUT_FILE_PATH; wrangler-dist/cli.js versionsUpload).
const OUTPUT = `{"type":"wrangler-session","version":1,"wrangler_version":"4.164.0"}
{"type":"version-upload","version":1,"worker_name":"app-staging","worker_tag":"t","version_id":"3f2c5f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f","preview_url":"https://3f2c5f5e-app-staging.acme.workers.dev","preview_alias_url":"https://pr-7-app-staging.acme.workers.dev","wrangler_environment":"staging"}
`;

describe("parseVersionUpload()", () => {
	it("reads the version id and the preview URLs", () => {
		expect(parseVersionUpload(OUTPUT)).toEqual({
			versionId: "3f2c5f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f",
			previewUrl: "https://3f2c5f5e-app-staging.acme.workers.dev",
			previewAliasUrl: "https://pr-7-app-staging.acme.workers.dev",
		});
	});
	it("is empty without a version-upload entry", () => {
		expect(parseVersionUpload('{"type":"deploy"}\nnot json\n').versionId).toBeUndefined();
	});
});

describe("workerUrlFromPreview()", () => {
	it.each([
		{
			url: "https://3f2c5f5e-app-staging.acme.workers.dev",
			worker: "app-staging",
			out: "https://app-staging.acme.workers.dev",
		},
		{ url: "https://3f2c5f5e-other.acme.workers.dev", worker: "app-staging", out: undefined },
		{ url: undefined, worker: "app", out: undefined },
	])("$url → $out", ({ url, worker, out }) => {
		expect(workerUrlFromPreview(url, worker)).toBe(out);
	});
});
