// Workers versions through wrangler: `versions upload` (a version that gets no traffic yet) and
// `versions deploy` (percentages of at most two versions), both non-interactive.
import path from "node:path";
import { runWrangler } from "../cloudflare/wrangler.ts";
import { DEFAULT_GRADUAL_STEPS } from "../constants.ts";
import { UserError } from "../errors.ts";
import type { StepContext } from "../steps/_step.ts";
import {
	formatWranglerFailure,
	parseOutputEntries,
	runWranglerWithOutput,
	tail,
	type UploadOptions,
	uploadArgs,
	type WranglerTarget,
	wranglerTargetArgs,
} from "./live.ts";

export type { UploadOptions };

export { DEFAULT_GRADUAL_STEPS };

/** Pure: `--steps 10,50,100` → increasing percentages ending at 100. */
export function parseSteps(text: string | undefined): number[] {
	if (text === undefined) return [...DEFAULT_GRADUAL_STEPS];
	const steps = text.split(",").map((part) => part.trim().replace(/%$/, ""));
	const numbers = steps.map(Number);
	const bad = steps.find((part, i) => part === "" || !Number.isInteger(numbers[i]));
	if (bad !== undefined || numbers.some((n) => n < 1 || n > 100))
		throw new UserError(
			`--steps expects whole percentages from 1 to 100 separated by commas (e.g. 10,50,100), not "${text}".`,
			"E_USAGE",
		);
	if (numbers.some((n, i) => i > 0 && n <= (numbers[i - 1] as number)))
		throw new UserError(`--steps must increase, not "${text}".`, "E_USAGE");
	if (numbers.at(-1) !== 100) numbers.push(100);
	return numbers;
}

/** The `type: "version-upload"` entry wrangler writes to WRANGLER_OUTPUT_FILE_PATH (wrangler-dist/cli.js versionsUpload). */
export function parseVersionUpload(ndjson: string): {
	versionId: string | undefined;
	previewUrl: string | undefined;
	previewAliasUrl: string | undefined;
} {
	const entry = parseOutputEntries(ndjson).find((e) => e.type === "version-upload") as
		| { version_id?: string; preview_url?: string; preview_alias_url?: string }
		| undefined;
	return {
		versionId: entry?.version_id,
		previewUrl: entry?.preview_url ?? undefined,
		previewAliasUrl: entry?.preview_alias_url ?? undefined,
	};
}

/** Pure: the Worker's workers.dev URL from a version preview URL (`https://<8 hex>-<worker>.<sub>.workers.dev`). */
export function workerUrlFromPreview(
	previewUrl: string | undefined,
	worker: string,
): string | undefined {
	if (!previewUrl) return undefined;
	const match = /^https:\/\/[0-9a-f]{8}-(.+)$/.exec(previewUrl);
	return match?.[1]?.startsWith(`${worker}.`) ? `https://${match[1]}` : undefined;
}

export type UploadResult =
	| { ok: true; versionId: string; previewUrl?: string; previewAliasUrl?: string }
	| { ok: false; message: string };

/** `wrangler versions upload`: a new version, deployed to nobody. */
export async function uploadVersion(
	ctx: StepContext,
	target: WranglerTarget,
	options: UploadOptions,
): Promise<UploadResult> {
	const { result, output } = await runWranglerWithOutput(ctx, target, {
		command: ["versions", "upload"],
		args: uploadArgs(options),
		outputFile: path.join(options.outputDir, "versions-upload.ndjson"),
		signal: options.signal,
	});
	const uploaded = parseVersionUpload(output);
	if (!result.failed && uploaded.versionId) {
		return {
			ok: true,
			versionId: uploaded.versionId,
			previewUrl: uploaded.previewUrl,
			previewAliasUrl: uploaded.previewAliasUrl,
		};
	}
	return { ok: false, message: formatWranglerFailure("versions upload", result) };
}

export interface TrafficSplit {
	versionId: string;
	percentage: number;
}

/** `wrangler versions deploy <id>@<p>% …`: version specs plus --yes make it ask nothing (workers-sdk#5709). */
export async function deployVersions(
	ctx: StepContext,
	target: WranglerTarget,
	options: { split: TrafficSplit[]; message: string; signal?: AbortSignal },
): Promise<{ ok: boolean; output: string }> {
	const result = await runWrangler({
		args: [
			"versions",
			"deploy",
			...options.split.map((s) => `${s.versionId}@${s.percentage}%`),
			...wranglerTargetArgs(target),
			"--message",
			options.message,
			"--yes",
		],
		cwd: target.project.root,
		projectRoot: target.project.root,
		env: ctx.env,
		timeoutMs: 120_000,
		signal: options.signal,
	});
	return { ok: !result.failed, output: tail(result.stdout + result.stderr) };
}
