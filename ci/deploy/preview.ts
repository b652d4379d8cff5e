// Worker Previews through wrangler (developers.cloudflare.com/workers/previews/): `wrangler preview`
// creates or updates a named Preview of the Worker with the bindings of the config's `previews`
// block, `wrangler preview delete -y` removes it with all its deployments. Both ask nothing:
// a `previews` block in the config skips ensurePreviewsConfig's prompt, `-y` the delete confirm
// (wrangler-dist/cli.js "src/preview/ensure-config.ts", "deploy-helpers/src/preview/preview.ts").
import path from "node:path";
import { runWrangler } from "../cloudflare/wrangler.ts";
import type { StepContext } from "../steps/_step.ts";
import {
	formatWranglerFailure,
	parseOutputEntries,
	runWranglerWithOutput,
	type UploadOptions,
	uploadArgs,
	type WranglerTarget,
	wranglerTargetArgs,
} from "./live.ts";

/** What `wrangler preview` reports in WRANGLER_OUTPUT_FILE_PATH (`type: "preview"`). */
export interface PreviewOutput {
	previewId: string;
	previewName: string;
	urls: string[];
	deploymentId: string;
	deploymentUrls: string[];
}

const strings = (value: unknown): string[] =>
	Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];

/** Pure: the `type: "preview"` entry of wrangler's ND-JSON output file (cli.js previewHandler writeOutput). */
export function parsePreviewOutput(ndjson: string): PreviewOutput | undefined {
	for (const entry of parseOutputEntries(ndjson)) {
		if (entry.type !== "preview") continue;
		if (typeof entry.preview_id !== "string" || typeof entry.deployment_id !== "string") continue;
		return {
			previewId: entry.preview_id,
			previewName: typeof entry.preview_name === "string" ? entry.preview_name : "",
			urls: strings(entry.preview_urls),
			deploymentId: entry.deployment_id,
			deploymentUrls: strings(entry.deployment_urls),
		};
	}
	return undefined;
}

export interface CreatePreviewOptions extends UploadOptions {
	name: string;
}

export type CreatePreviewResult = ({ ok: true } & PreviewOutput) | { ok: false; message: string };

/**
 * `wrangler preview --name <name>`: a deployment of the build on the named Preview.
 * `--ignore-base-config`: the Preview gets exactly the config's `previews` block, so a dashboard
 * base config can never bind it to the environment's own database.
 */
export async function createPreview(
	ctx: StepContext,
	target: WranglerTarget,
	options: CreatePreviewOptions,
): Promise<CreatePreviewResult> {
	const { result, output } = await runWranglerWithOutput(ctx, target, {
		command: ["preview"],
		args: ["--name", options.name, "--ignore-base-config", ...uploadArgs(options)],
		outputFile: path.join(options.outputDir, "preview.ndjson"),
		signal: options.signal,
	});
	const created = parsePreviewOutput(output);
	if (!result.failed && created) return { ok: true, ...created };
	return { ok: false, message: formatWranglerFailure("preview", result) };
}

/** Where the Previews API lives for this run (wrangler honours the same variable). */
const apiBase = (env: Readonly<Record<string, string | undefined>>) =>
	(env.CLOUDFLARE_API_BASE_URL || "https://api.cloudflare.com/client/v4").replace(/\/$/, "");

// deploy-helpers/src/preview/api.ts getPreview: GET …/workers/workers/:worker/previews/:name;
// 10025 is PREVIEW_NOT_FOUND_ERR_CODE, 10007 the Worker itself is unknown (cli.js:166418).
const GONE_CODES = new Set([10025, 10007, 10090]);

/** Whether the Worker has a Preview of that name: true, false, or an error message. */
export async function readPreviewExists(
	ctx: StepContext,
	target: { worker: string; name: string },
): Promise<boolean | string> {
	const url = `${apiBase(ctx.env)}/accounts/${ctx.env.CLOUDFLARE_ACCOUNT_ID}/workers/workers/${encodeURIComponent(target.worker)}/previews/${encodeURIComponent(target.name)}`;
	let response: Response;
	try {
		response = await fetch(url, {
			headers: { authorization: `Bearer ${ctx.env.CLOUDFLARE_API_TOKEN}` },
			signal: ctx.signal ?? AbortSignal.timeout(60_000),
		});
	} catch (error) {
		return `the Previews API did not answer: ${(error as Error).message}`;
	}
	if (response.ok) return true;
	const body = (await response.json().catch(() => ({}))) as {
		errors?: { code?: number; message?: string }[];
	};
	if (body.errors?.some((e) => e.code !== undefined && GONE_CODES.has(e.code))) return false;
	const first = body.errors?.[0];
	return `the Previews API answered ${response.status}${first ? ` (${first.code}: ${first.message})` : ""}`;
}

export type DeletePreviewResult = { ok: true; deleted: boolean } | { ok: false; message: string };

/**
 * `wrangler preview delete --name <name> -y`, idempotent: a Preview that is already gone (never
 * created, or deleted by an earlier cleanup) is success with `deleted: false`. wrangler itself
 * fails on it (deletePreview has no not-found case), so the Preview is looked up first, and
 * again after a failed delete (another run may have deleted it in between).
 */
export async function deletePreview(
	ctx: StepContext,
	target: WranglerTarget & { worker: string; name: string },
): Promise<DeletePreviewResult> {
	const before = await readPreviewExists(ctx, target);
	if (typeof before === "string") return { ok: false, message: before };
	if (!before) return { ok: true, deleted: false };
	const result = await runWrangler({
		args: ["preview", "delete", ...wranglerTargetArgs(target), "--name", target.name, "-y"],
		cwd: target.project.root,
		projectRoot: target.project.root,
		env: ctx.env,
		timeoutMs: 120_000,
		signal: ctx.signal,
	});
	if (!result.failed) return { ok: true, deleted: true };
	const after = await readPreviewExists(ctx, target);
	if (after === false) return { ok: true, deleted: false };
	return { ok: false, message: formatWranglerFailure("preview delete", result) };
}
