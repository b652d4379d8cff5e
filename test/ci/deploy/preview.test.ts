// The pure part of ci/deploy/preview.ts: reading `wrangler preview`'s output file.
import { describe, expect, it } from "vitest";
import { parsePreviewOutput } from "../../../ci/deploy/preview.ts";

// As wrangler 4.164's previewHandler writes it (wrangler-dist/cli.js writeOutput `type: "preview"`).
const ENTRY = {
	type: "preview",
	version: 1,
	worker_name: "app-staging",
	preview_id: "0b7e…-preview",
	preview_name: "pr-7",
	preview_slug: "pr-7",
	preview_urls: ["https://pr-7-app-staging.acme.workers.dev"],
	deployment_id: "3f2c5f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f",
	deployment_urls: ["https://3f2c5f5e-pr-7-app-staging.acme.workers.dev"],
};

describe("parsePreviewOutput()", () => {
	it("reads the preview entry among wrangler's other lines", () => {
		const ndjson = [
			JSON.stringify({ type: "wrangler-session", version: 1 }),
			"not json",
			JSON.stringify(ENTRY),
			"",
		].join("\n");
		expect(parsePreviewOutput(ndjson)).toEqual({
			previewId: ENTRY.preview_id,
			previewName: "pr-7",
			urls: ENTRY.preview_urls,
			deploymentId: ENTRY.deployment_id,
			deploymentUrls: ENTRY.deployment_urls,
		});
	});

	it.each([
		{ case: "no output", text: "" },
		{ case: "no preview entry", text: JSON.stringify({ type: "deploy", version_id: "x" }) },
		{ case: "no deployment id", text: JSON.stringify({ ...ENTRY, deployment_id: undefined }) },
	])("gives nothing for $case", ({ text }) => {
		expect(parsePreviewOutput(text)).toBeUndefined();
	});

	it("takes a Preview without URLs (Preview URLs off) as no URLs, not an error", () => {
		const text = JSON.stringify({ ...ENTRY, preview_urls: undefined, deployment_urls: null });
		expect(parsePreviewOutput(text)).toMatchObject({ urls: [], deploymentUrls: [] });
	});
});
