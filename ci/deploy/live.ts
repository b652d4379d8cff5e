// What is live: `wrangler deployments status --json`, read so that only a definite "this Worker
// has no deployments" counts as a first deploy, and `wrangler rollback`, confirmed afterwards.
import { readFileSync } from "node:fs";
import { runWrangler, usesRedirectedConfig } from "../cloudflare/wrangler.ts";
import type { ProjectConfig } from "../config/schema.ts";
import type { ProcessResult } from "../process.ts";
import type { StepContext } from "../steps/_step.ts";

export interface DeploymentVersion {
	version_id: string;
	percentage: number;
}

export type LiveState =
	| { kind: "live"; versionId: string | undefined; versions: DeploymentVersion[] }
	| { kind: "none"; evidence: string }
	| { kind: "unknown"; message: string };

export const tail = (text: string, n = 15) => text.trimEnd().split("\n").slice(-n).join("\n");

// wrangler's deployments status handler throws "The Worker <name> has no deployments." when the
// list is empty (wrangler-dist/cli.js versionsDeploymentsStatusHandler); the API answers a Worker
// that does not exist with code 10007 (workers.api.error.script_not_found), which wrangler prints
// as "[code: 10007]" (its APIError formatting).
const NO_DEPLOYMENTS = [/The Worker \S+ has no deployments\./, /\[code: 10007\]/];

/** Pure: the result of `wrangler deployments status --json` → live / none / unknown. */
export function parseDeploymentsStatus(
	result: Pick<ProcessResult, "failed" | "stdout" | "stderr" | "exitCode">,
): LiveState {
	const output = `${result.stdout}\n${result.stderr}`;
	if (result.failed) {
		const evidence = NO_DEPLOYMENTS.map((re) => re.exec(output)?.[0]).find(Boolean);
		if (evidence) return { kind: "none", evidence };
		return {
			kind: "unknown",
			message: `wrangler deployments status failed (exit ${result.exitCode ?? "?"}): ${tail(output.trim(), 8) || "no output"}`,
		};
	}
	const start = result.stdout.indexOf("{");
	let status: { versions?: unknown };
	try {
		status = JSON.parse(result.stdout.slice(start)) as { versions?: unknown };
	} catch (error) {
		return {
			kind: "unknown",
			message: `wrangler deployments status printed no JSON (${(error as Error).message}): ${tail(result.stdout, 4)}`,
		};
	}
	const versions = Array.isArray(status.versions)
		? status.versions.filter(
				(v): v is DeploymentVersion =>
					typeof v?.version_id === "string" && typeof v?.percentage === "number",
			)
		: [];
	if (versions.length === 0)
		return { kind: "unknown", message: "wrangler deployments status listed no versions" };
	const live =
		versions.find((v) => v.percentage === 100) ??
		[...versions].sort((a, b) => b.percentage - a.percentage)[0];
	return { kind: "live", versionId: live?.version_id, versions };
}

export interface WranglerTarget {
	project: ProjectConfig;
	/** The wrangler environment; none: the top-level Worker, as in wrangler. */
	env?: string;
}

/** `--env <name>`, or nothing: wrangler without --env addresses the top-level Worker. */
export const wranglerEnvArgs = (env: string | undefined): string[] => (env ? ["--env", env] : []);

/** The arguments that point wrangler at the target's config and Worker. */
export const wranglerTargetArgs = ({ project, env }: WranglerTarget): string[] => [
	"--config",
	project.wranglerPath,
	...wranglerEnvArgs(env),
];

/** What an upload of the build (deploy, versions upload, preview) carries. */
export interface UploadOptions {
	tag: string;
	message: string;
	vars: Record<string, string>;
	secretsFile?: string;
	outputDir: string;
	signal?: AbortSignal;
}

/** Pure: an upload's `--tag`, `--message`, `--var k:v` and `--secrets-file` arguments. */
export const uploadArgs = (
	options: Pick<UploadOptions, "tag" | "message" | "vars" | "secretsFile">,
): string[] => [
	"--tag",
	options.tag,
	"--message",
	options.message,
	...Object.entries(options.vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
	...(options.secretsFile ? ["--secrets-file", options.secretsFile] : []),
];

export interface WranglerOutputOptions {
	/** The subcommand (`["versions", "upload"]`); the target's --config/--env follow it. */
	command: string[];
	/** The arguments after the target's. */
	args: string[];
	/** Where wrangler writes its ND-JSON output (WRANGLER_OUTPUT_FILE_PATH). */
	outputFile: string;
	signal: AbortSignal | undefined;
}

/**
 * A wrangler command that uploads the build, with its ND-JSON output file read back: the
 * result, and the file's text ("" when wrangler failed before writing it). OPEN_NEXT_DEPLOY set
 * keeps wrangler from handing off to `opennextjs-cloudflare deploy`, the build being made
 * (wrangler-dist/cli.js maybeDelegateToOpenNextDeployCommand).
 */
export async function runWranglerWithOutput(
	ctx: StepContext,
	target: WranglerTarget,
	options: WranglerOutputOptions,
): Promise<{ result: ProcessResult; output: string }> {
	// A Cloudflare Vite plugin build is uploaded as it was built: wrangler follows the config the
	// build wrote only without --config (else it bundles the source `main` itself).
	const targetArgs = usesRedirectedConfig(target.project)
		? wranglerEnvArgs(target.env)
		: wranglerTargetArgs(target);
	const result = await runWrangler({
		args: [...options.command, ...targetArgs, ...options.args],
		cwd: target.project.root,
		projectRoot: target.project.root,
		env: { ...ctx.env, WRANGLER_OUTPUT_FILE_PATH: options.outputFile, OPEN_NEXT_DEPLOY: "true" },
		timeoutMs: 10 * 60_000,
		signal: options.signal,
	});
	let output = "";
	try {
		output = readFileSync(options.outputFile, "utf8");
	} catch {
		// No output file: wrangler failed early.
	}
	return { result, output };
}

/** Pure: the JSON objects of wrangler's ND-JSON output file, in order; other lines are skipped. */
export function parseOutputEntries(ndjson: string): Record<string, unknown>[] {
	const entries: Record<string, unknown>[] = [];
	for (const line of ndjson.split("\n")) {
		try {
			const entry: unknown = JSON.parse(line);
			if (typeof entry === "object" && entry !== null)
				entries.push(entry as Record<string, unknown>);
		} catch {
			// Not JSON (or a blank line): ignore.
		}
	}
	return entries;
}

/** Pure: "wrangler <what> failed (exit N):" and the tail of its output. */
export const formatWranglerFailure = (
	what: string,
	result: Pick<ProcessResult, "exitCode" | "signal" | "stdout" | "stderr">,
): string =>
	`wrangler ${what} failed (exit ${result.exitCode ?? result.signal}):\n${tail(result.stdout + result.stderr)}`;

/** `wrangler deployments status --json` for the environment's Worker. */
export async function readLiveState(
	ctx: StepContext,
	target: WranglerTarget,
	signal: AbortSignal | undefined = ctx.signal,
): Promise<LiveState> {
	const result = await runWrangler({
		args: ["deployments", "status", "--json", ...wranglerTargetArgs(target)],
		cwd: target.project.root,
		projectRoot: target.project.root,
		env: ctx.env,
		timeoutMs: 120_000,
		signal,
	});
	return parseDeploymentsStatus(result);
}

export interface RollbackOutcome {
	ok: boolean;
	live: string | undefined;
	reported: string | undefined;
	output: string;
}

/** `wrangler rollback <id>`, then confirm the live version really is that id (and alone at 100 %). */
export async function rollbackTo(
	ctx: StepContext,
	target: WranglerTarget,
	options: { versionId: string | undefined; message: string; signal?: AbortSignal },
): Promise<RollbackOutcome> {
	// Its own signal: a rollback after Ctrl-C must still run to the end.
	const signal = options.signal ?? AbortSignal.timeout(180_000);
	const result = await runWrangler({
		args: [
			"rollback",
			...(options.versionId ? [options.versionId] : []),
			...wranglerTargetArgs(target),
			"--message",
			options.message,
			"-y",
		],
		cwd: target.project.root,
		projectRoot: target.project.root,
		env: ctx.env,
		timeoutMs: 120_000,
		signal,
	});
	const reported = /Current Version ID:\s*([0-9a-f-]{36})/i.exec(result.stdout)?.[1];
	const live = await readLiveState(ctx, target, signal).catch(
		(error): LiveState => ({ kind: "unknown", message: (error as Error).message }),
	);
	const liveId = live.kind === "live" ? live.versionId : undefined;
	const alone = live.kind === "live" && live.versions.length === 1;
	return {
		ok:
			!result.failed &&
			liveId !== undefined &&
			alone &&
			(options.versionId === undefined || liveId === options.versionId),
		live: liveId,
		reported,
		output: tail(result.stdout + result.stderr),
	};
}
