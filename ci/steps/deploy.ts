import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { readRedirectedBuild, usesRedirectedConfig } from "../cloudflare/wrangler.ts";
import { refusePagesProject, resolveEnvironment, selectDatabase } from "../config/load.ts";
import type { ProjectConfig, ResolvedEnvironment } from "../config/schema.ts";
import {
	DEFAULT_HEALTH_PROBES,
	DEFAULT_HEALTH_TIMEOUT_SECONDS,
	DEFAULT_HEALTH_WINDOW_SECONDS,
	type HealthExpectation,
	type HealthObservation,
	type HealthPolicy,
	VERSION_OVERRIDE_HEADER,
	waitForHealth,
} from "../deploy/health-check.ts";
import {
	formatWranglerFailure,
	type LiveState,
	parseOutputEntries,
	readLiveState,
	rollbackTo,
	runWranglerWithOutput,
	type UploadOptions,
	uploadArgs,
	type WranglerTarget,
} from "../deploy/live.ts";
import { type DeploySecrets, readDeploySecrets, redactDeep } from "../deploy/secrets.ts";
import {
	DEFAULT_GRADUAL_STEPS,
	deployVersions,
	type TrafficSplit,
	uploadVersion,
	workerUrlFromPreview,
} from "../deploy/versions.ts";
import { UserError } from "../errors.ts";
import { describeOwner, readGitSha } from "../git.ts";
import { parseCatalog, readCatalog } from "../migrations/catalog.ts";
import { type Finding, hasErrors } from "../report/model.ts";
import { envFlag } from "./_remote.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import { BUILD_STAMP, OTHER_BUILD_STAMP, readBuildStamp } from "./build.ts";
import { migrateStep } from "./migrate.ts";

export {
	DEFAULT_HEALTH_PROBES,
	DEFAULT_HEALTH_TIMEOUT_SECONDS,
	DEFAULT_HEALTH_WINDOW_SECONDS,
} from "../deploy/health-check.ts";
export { parseSecretsFile } from "../deploy/secrets.ts";
export { DEFAULT_GRADUAL_STEPS, parseSteps } from "../deploy/versions.ts";

import { DEFAULT_DEPLOY_STRATEGY, type DeployStrategy, EXPECTED_HEAD_VAR } from "../constants.ts";

/** The Worker var in which deploy tells the new version which migration it needs (ci/health/). */
export { DEFAULT_DEPLOY_STRATEGY, type DeployStrategy, EXPECTED_HEAD_VAR };

export interface DeployArgs {
	project: ProjectConfig;
	/** The wrangler environment; none: the top-level Worker, as in wrangler. */
	env?: string;
	binding?: string;
	/** gradual: upload, verify at 0 % through the override header, then step up; immediate: 100 % at once. */
	strategy?: DeployStrategy;
	/** The traffic steps of a gradual deploy, ending at 100. */
	steps?: number[];
	skipMigrate?: boolean;
	healthTimeoutSeconds?: number;
	/** Consecutive good probes a version needs. */
	healthProbes?: number;
	/** The good probes must span at least this many seconds. */
	healthWindowSeconds?: number;
	/** A JSON or .env file of Worker secrets, uploaded with the version. */
	secretsFile?: string;
	/** Names of environment variables to upload as Worker secrets. */
	secretsFromEnv?: string[];
	autoRestore?: boolean;
	lockTimeoutSeconds?: number;
}

export interface RollbackArgs {
	project: ProjectConfig;
	/** The wrangler environment; none: the top-level Worker, as in wrangler. */
	env?: string;
	to?: string;
}

/** What migrate reported, as deploy keeps it. */
export type DeployMigrateData = { ok: boolean; summary: string; bookmark: string | null } & Record<
	string,
	unknown
>;

export type DeployRollbackData =
	| { needed: false; reason: string }
	| { attempted: false; reason: string }
	| { attempted: true; to: string; confirmed: boolean; live: string | null };

/** One traffic step of a gradual deploy: what was probed and how it went. */
export type GradualStepData = {
	percentage: number;
	/** Through the version-overrides header (only the new version answers) or as users are routed. */
	via: "override" | "traffic";
	ok: boolean;
	/** Time from the step's start (traffic change) to the verdict. */
	durationMs: number;
	health: HealthObservation | null;
	/** Why the step failed before health was probed (a failed traffic change). */
	error?: string;
};

/** The typed `data` of a deploy result (JSON in the report). */
export type DeployData = {
	/** null: the top-level Worker (no --env). */
	environment: string | null;
	worker: string;
	strategy: DeployStrategy;
	/** Gradual only: each step in order. */
	steps?: GradualStepData[];
	/** The commit being deployed. */
	version?: string;
	previousVersionId?: string | null;
	/** The migration the new version needs, passed as the WORKERS_PIPELINE_EXPECTED_HEAD var. */
	expectedHead?: string | null;
	migrate?: DeployMigrateData;
	versionId?: string | null;
	targets?: string[];
	healthUrl?: string | null;
	health?: HealthObservation;
	rollback?: DeployRollbackData;
	interrupted?: boolean;
};

/** One deploy in progress: what every phase reads and adds to. */
interface DeployRun {
	ctx: StepContext;
	args: DeployArgs;
	project: ProjectConfig;
	environment: ResolvedEnvironment;
	/** The Worker wrangler addresses: config + environment. */
	target: WranglerTarget;
	data: DeployData;
	findings: Finding[];
	secrets: DeploySecrets;
	sha: string;
	policy: HealthPolicy;
	/** The D1 bookmark migrate took (null when nothing was migrated). */
	bookmark: string | null;
}

/** The `type: "deploy"` entry wrangler writes to WRANGLER_OUTPUT_FILE_PATH. */
export function parseDeployOutput(ndjson: string): {
	versionId: string | undefined;
	targets: string[];
} {
	const entry = parseOutputEntries(ndjson).find((e) => e.type === "deploy") as
		| { version_id?: string; targets?: string[] }
		| undefined;
	return { versionId: entry?.version_id, targets: entry?.targets ?? [] };
}

/** The health settings of a run; a window longer than the timeout could never hold. */
export function planHealthPolicy(
	args: Pick<DeployArgs, "healthTimeoutSeconds" | "healthProbes" | "healthWindowSeconds">,
): HealthPolicy {
	const timeout = args.healthTimeoutSeconds ?? DEFAULT_HEALTH_TIMEOUT_SECONDS;
	const probes = args.healthProbes ?? DEFAULT_HEALTH_PROBES;
	const window = args.healthWindowSeconds ?? DEFAULT_HEALTH_WINDOW_SECONDS;
	if (!Number.isInteger(probes) || probes < 1)
		throw new UserError(`--health-probes must be a whole number ≥ 1, not ${probes}.`, "E_USAGE");
	if (!(window >= 0) || !(timeout > 0))
		throw new UserError(
			"--health-window and --health-timeout must be positive numbers of seconds.",
			"E_USAGE",
		);
	if (window >= timeout)
		throw new UserError(
			`--health-window (${window} s) must be shorter than --health-timeout (${timeout} s), or health could never hold.`,
			"E_USAGE",
		);
	return { timeoutMs: timeout * 1000, probes, windowMs: window * 1000 };
}

/** The newest migration of the binding's catalog: what the new version's health must find applied. */
function readExpectedHead(run: Pick<DeployRun, "project" | "environment" | "args">): string | null {
	if (run.environment.databases.length === 0) return null;
	const database = selectDatabase(run.project, run.environment, run.args.binding);
	const catalog = parseCatalog(readCatalog({ root: run.project.root, database }));
	return catalog.migrations.at(-1)?.name ?? null;
}

// `<12 hex>` of a sha, keeping a `-dirty` suffix visible.
const shortVersion = (version: string) => version.replace(/^([0-9a-f]{12})[0-9a-f]*/, "$1");

/** Never deploy something other than this commit's build, made for this environment: why not, or undefined. */
function checkBuild(run: DeployRun): string | undefined {
	const stamp = readBuildStamp(run.project.root);
	if (stamp && stamp.version === run.sha)
		return checkBuiltEnvironment(run)
			? undefined
			: "refused: the build is for another environment; nothing was deployed";
	// A Cloudflare Vite plugin build is made for the environment it deploys to.
	const build = `workers-pipeline build${usesRedirectedConfig(run.project) ? envFlag(run.args.env) : ""}`;
	run.findings.push({
		code: "BUILD_MISSING",
		severity: "error",
		message: stamp
			? `the build in place is of ${shortVersion(stamp.version)}, not the current commit ${shortVersion(run.sha)}${stamp.version.endsWith("-dirty") ? " (a build of uncommitted changes is never deployed: commit them, then build)" : ""}; run \`${build}\` first.`
			: `no build found (no ${BUILD_STAMP} or ${OTHER_BUILD_STAMP}, the stamps \`workers-pipeline build\` writes); run \`${build}\` first.`,
	});
	return "refused: no build of the current commit; nothing was deployed";
}

/**
 * A Cloudflare Vite plugin build holds one environment's Worker: wrangler would ship it under that
 * name with those bindings whatever --env says (a build for no environment is the top-level
 * Worker, bound to its databases), so a build for another environment stops the deploy here.
 */
function checkBuiltEnvironment(run: DeployRun): boolean {
	const built = readRedirectedBuild(run.project);
	if (!built?.config || built.environment === run.args.env) return true;
	const name = (env: string | undefined) =>
		env ? `environment "${env}"` : "the top-level Worker (no environment)";
	run.findings.push({
		code: "BUILD_ENV_MISMATCH",
		severity: "error",
		message: `the build in ${built.config} is for ${name(built.environment)}, not ${name(run.args.env)}: the Cloudflare Vite plugin builds one environment (CLOUDFLARE_ENV when it runs), and wrangler deploys it as built. Build for this one, then deploy: \`workers-pipeline build${envFlag(run.args.env)}\`.`,
	});
	return false;
}

/** The live version before anything changes; any doubt stops the deploy before the upload. */
async function recordLive(run: DeployRun): Promise<LiveState | undefined> {
	run.ctx.progress("reading the live version");
	const live = await readLiveState(run.ctx, run.target);
	if (live.kind === "unknown") {
		run.findings.push({
			code: "LIVE_VERSION_UNKNOWN",
			severity: "error",
			message: `cannot tell which version is live, so there would be nothing sure to roll back to: ${live.message}. Nothing was migrated or deployed; fix the cause (token permissions, network, Worker name) and run again.`,
		});
		return undefined;
	}
	run.data.previousVersionId = live.kind === "live" ? (live.versionId ?? null) : null;
	return live;
}

/** Migrate first: a failure stops the deploy before anything is uploaded. */
async function migrateFirst(run: DeployRun): Promise<boolean> {
	// A Worker with no D1 anywhere in its config: nothing to migrate. An environment without
	// the D1 others declare is still refused by migrate (bindings are not inherited).
	const { wrangler } = run.project;
	const declared = [wrangler, ...Object.values(wrangler.env ?? {})].some(
		(scope) => (scope?.d1_databases ?? []).length > 0,
	);
	if (!declared) {
		run.ctx.progress("no D1 binding in the wrangler config: nothing to migrate");
		run.data.migrate = { ok: true, summary: "no D1 binding: nothing to migrate", bookmark: null };
		return true;
	}
	run.ctx.progress("migrating D1 before the deploy");
	const migrate = await migrateStep.run(run.ctx, {
		project: run.project,
		env: run.args.env,
		binding: run.args.binding,
		autoRestore: run.args.autoRestore,
		lockTimeoutSeconds: run.args.lockTimeoutSeconds,
	});
	run.findings.push(...migrate.findings);
	const bookmark = migrate.data?.bookmark;
	run.bookmark = typeof bookmark === "string" ? bookmark : null;
	run.data.migrate = {
		...migrate.data,
		ok: migrate.ok,
		summary: migrate.summary,
		bookmark: run.bookmark,
	};
	return migrate.ok;
}

const deployMessage = (run: DeployRun) =>
	`workers-pipeline deploy ${run.sha.slice(0, 12)} by ${describeOwner(run.ctx.env)}`;

/** What both strategies upload: this commit's build, tagged, with the expected head as a var. */
const uploadOf = (run: DeployRun, outputDir: string): UploadOptions => ({
	tag: run.sha,
	message: deployMessage(run),
	vars: run.data.expectedHead ? { [EXPECTED_HEAD_VAR]: run.data.expectedHead } : {},
	secretsFile: run.secrets.file,
	outputDir,
	signal: run.ctx.signal,
});

/** `wrangler deploy --tag <sha>`: the new version at 100 %, with the expected head as a var. */
async function uploadImmediate(run: DeployRun, outputDir: string) {
	run.ctx.progress(`wrangler deploy${envFlag(run.args.env)} --tag ${run.sha.slice(0, 12)}`);
	// --config keeps wrangler from handing off to `opennextjs-cloudflare deploy` (which would
	// rebuild and pass our arguments through a shell); the build is already made.
	const { result, output } = await runWranglerWithOutput(run.ctx, run.target, {
		command: ["deploy"],
		args: uploadArgs(uploadOf(run, outputDir)),
		outputFile: path.join(outputDir, "wrangler-output.ndjson"),
		signal: run.ctx.signal,
	});
	const deployed = parseDeployOutput(output);
	run.data.versionId = deployed.versionId ?? null;
	run.data.targets = deployed.targets;
	if (!result.failed && deployed.versionId)
		return { versionId: deployed.versionId, targets: deployed.targets };
	run.findings.push({
		code: "DEPLOY_FAILED",
		severity: "error",
		message: formatWranglerFailure("deploy", result),
	});
	return undefined;
}

/** The deploy.healthUrls key of the top-level Worker (deploy without --env). */
export const TOP_LEVEL_HEALTH_KEY = "default";

/** The deploy.healthUrls key of a Worker: its --env name, or "default" for the top-level Worker. */
export const healthUrlKey = (envName: string | undefined): string =>
	envName || TOP_LEVEL_HEALTH_KEY;

/** The URL deploy probes: deploy.healthUrls.<env>, else the health path on the Worker's first URL. */
function healthUrlOf(run: DeployRun, targets: readonly string[]): string | undefined {
	const { healthUrls, healthPath } = run.project.settings.deploy;
	const url =
		healthUrls[healthUrlKey(run.args.env)] ??
		(targets[0] ? new URL(healthPath, targets[0]).toString() : undefined);
	run.data.healthUrl = url ?? null;
	if (url) return url;
	run.findings.push({
		code: "HEALTH_NO_URL",
		severity: "error",
		message: `wrangler reported no URL for the Worker; set deploy.healthUrls.${healthUrlKey(run.args.env)} in workers-pipeline.jsonc.`,
	});
	return undefined;
}

/** Waits for the new version's health to hold; records the observation and a finding when it does not. */
async function verifyHealth(run: DeployRun, url: string, versionId: string): Promise<boolean> {
	run.ctx.progress(`waiting for ${url} to report version ${versionId} healthy`);
	const health = await waitForHealth({
		...run.policy,
		url,
		expect: { versionId, expectedHead: run.data.expectedHead },
		signal: run.ctx.signal,
		onProbe: (reason) => run.ctx.progress(`health: ${reason}`),
	});
	run.data.health = health;
	if (health.ok) return true;
	run.findings.push({
		code: health.noRoute ? "HEALTH_NO_ROUTE" : "HEALTH_FAILED",
		severity: "error",
		message: `${url} did not report a healthy ${versionId}: ${health.reason}.`,
	});
	return false;
}

const d1Note = (run: DeployRun) =>
	run.bookmark
		? `D1 was not rolled back: a Worker rollback does not undo migrations. If the new schema is the problem, restore the database with: workers-pipeline restore${envFlag(run.args.env)} --bookmark ${run.bookmark}`
		: "D1 was not changed by this deploy.";

/** Puts the recorded version back after a failure, and says plainly what a Worker rollback does not undo. */
async function rollBack(run: DeployRun, previous: LiveState, why: string): Promise<string> {
	const previousId = previous.kind === "live" ? previous.versionId : undefined;
	// Reading with a signal of its own: after Ctrl-C the run's signal is aborted.
	const now = await readLiveState(run.ctx, run.target, AbortSignal.timeout(120_000)).catch(
		() => previous,
	);
	if (
		now.kind === "live" &&
		previousId &&
		now.versionId === previousId &&
		now.versions.length === 1
	) {
		run.data.rollback = { needed: false, reason: "the live version did not change" };
		return `${why}; the previous version ${previousId} is still live`;
	}
	if (now.kind === "none") {
		run.data.rollback = { needed: false, reason: "nothing was ever deployed" };
		return `${why}; the Worker has still never been deployed`;
	}
	if (!previousId) {
		run.data.rollback = { attempted: false, reason: "first deploy" };
		run.findings.push({
			code: "ROLLBACK_IMPOSSIBLE",
			severity: "error",
			message: `this was the first deploy of ${run.environment.workerName}: there is no earlier version to roll back to, so version ${run.data.versionId ?? "(unknown)"} stays live. Fix forward, or remove it with \`wrangler delete${envFlag(run.args.env)}\`. ${d1Note(run)}`,
		});
		return `${why === "unhealthy" ? "unhealthy first deploy" : `${why} on the first deploy`}: nothing to roll back to`;
	}
	run.ctx.progress(`rolling back to ${previousId}`);
	const rollback = await rollbackTo(run.ctx, run.target, {
		versionId: previousId,
		message: `workers-pipeline: ${why} for ${run.sha.slice(0, 12)}`,
	});
	run.data.rollback = {
		attempted: true,
		to: previousId,
		confirmed: rollback.ok,
		live: rollback.live ?? null,
	};
	run.findings.push(
		rollback.ok
			? {
					code: "ROLLED_BACK",
					severity: "error",
					message: `rolled back to the recorded version ${previousId} (confirmed live). ${d1Note(run)}`,
				}
			: {
					code: "ROLLBACK_FAILED",
					severity: "error",
					message: `rollback to ${previousId} could not be confirmed (live: ${rollback.live ?? "unknown"}):\n${rollback.output}\nRun \`workers-pipeline rollback${envFlag(run.args.env)} --to ${previousId}\` now. ${d1Note(run)}`,
				},
	);
	return rollback.ok
		? `${why}: rolled back to ${previousId}`
		: `${why} and the rollback is unconfirmed`;
}

/** Records a Ctrl-C / SIGTERM; the caller then rolls back. */
function noteInterrupted(run: DeployRun, during: string): void {
	run.data.interrupted = true;
	run.findings.push({
		code: "DEPLOY_INTERRUPTED",
		severity: "error",
		message: `interrupted (Ctrl-C or SIGTERM) during ${during}; the deploy stopped and the recorded version was put back.`,
	});
}

const isAborted = (run: DeployRun) => run.ctx.signal?.aborted === true;

/** The immediate strategy: upload at 100 %, verify, roll back on failure. */
async function deployImmediate(
	run: DeployRun,
	previous: LiveState,
	outputDir: string,
): Promise<string> {
	let deployed: Awaited<ReturnType<typeof uploadImmediate>>;
	try {
		deployed = await uploadImmediate(run, outputDir);
		if (isAborted(run)) throw run.ctx.signal?.reason;
		if (!deployed) return await rollBack(run, previous, "wrangler deploy failed");
		const url = healthUrlOf(run, deployed.targets);
		if (url && (await verifyHealth(run, url, deployed.versionId))) {
			return `deployed ${run.sha.slice(0, 12)} as version ${deployed.versionId}; health holds`;
		}
	} catch (error) {
		if (!isAborted(run)) throw error;
		noteInterrupted(run, run.data.versionId ? "the health check" : "the upload");
		return await rollBack(run, previous, "interrupted");
	}
	return rollBack(run, previous, "unhealthy");
}

/** The URL to probe for a gradual deploy: deploy.healthUrls.<env>, else the workers.dev URL. */
function gradualHealthUrl(run: DeployRun, previewUrl: string | undefined): string | undefined {
	const workerUrl = workerUrlFromPreview(previewUrl, run.environment.workerName);
	return healthUrlOf(run, workerUrl ? [workerUrl] : []);
}

interface GradualContext {
	url: string;
	newId: string;
	oldId: string;
}

/** Moves traffic: the new version at `percentage`, the old one at the rest. */
async function moveTraffic(
	run: DeployRun,
	step: GradualContext & { percentage: number },
): Promise<boolean> {
	const split: TrafficSplit[] =
		step.percentage === 100
			? [{ versionId: step.newId, percentage: 100 }]
			: [
					{ versionId: step.newId, percentage: step.percentage },
					{ versionId: step.oldId, percentage: 100 - step.percentage },
				];
	run.ctx.progress(
		`traffic: ${split.map((s) => `${s.versionId.slice(0, 8)} ${s.percentage} %`).join(", ")}`,
	);
	const moved = await deployVersions(run.ctx, run.target, {
		split,
		message: `${deployMessage(run)}: ${step.percentage} %`,
		signal: run.ctx.signal,
	});
	if (moved.ok) return true;
	run.data.steps?.push({
		percentage: step.percentage,
		via: "override",
		ok: false,
		durationMs: 0,
		health: null,
		error: moved.output,
	});
	run.findings.push({
		code: "DEPLOY_FAILED",
		severity: "error",
		message: `wrangler versions deploy at ${step.percentage} % failed:\n${moved.output}`,
	});
	return false;
}

/** Probes until health holds: through the override header (only the new version), or as users are routed. */
async function probeStep(
	run: DeployRun,
	step: GradualContext & { percentage: number; via: GradualStepData["via"] },
): Promise<boolean> {
	const started = Date.now();
	const expect: HealthExpectation =
		step.via === "override" || step.percentage === 100
			? { versionId: step.newId, expectedHead: run.data.expectedHead }
			: { versionId: step.newId, expectedHead: run.data.expectedHead, alsoAccept: [step.oldId] };
	run.ctx.progress(
		`health at ${step.percentage} % (${step.via === "override" ? "version override" : "user traffic"})`,
	);
	const health = await waitForHealth({
		...run.policy,
		url: step.url,
		expect,
		headers:
			step.via === "override"
				? { [VERSION_OVERRIDE_HEADER]: `${run.environment.workerName}="${step.newId}"` }
				: {},
		signal: run.ctx.signal,
		onProbe: (reason) => run.ctx.progress(`health: ${reason}`),
	});
	run.data.steps?.push({
		percentage: step.percentage,
		via: step.via,
		ok: health.ok,
		durationMs: Date.now() - started,
		health,
	});
	run.data.health = health;
	if (!health.ok)
		run.findings.push({
			code: health.noRoute ? "HEALTH_NO_ROUTE" : "HEALTH_FAILED",
			severity: "error",
			message: `${step.url} did not report a healthy ${step.newId} at ${step.percentage} % (${step.via === "override" ? "through the version-overrides header" : "with user traffic"}): ${health.reason}.`,
		});
	return health.ok;
}

/** One traffic step: move, then health through the override header and (above 0 %) with user traffic. */
async function runTrafficStep(
	run: DeployRun,
	step: GradualContext & { percentage: number },
): Promise<boolean> {
	if (!(await moveTraffic(run, step))) return false;
	if (!(await probeStep(run, { ...step, via: "override" }))) return false;
	return step.percentage === 0 || probeStep(run, { ...step, via: "traffic" });
}

/** Pure: "0 % override 2/2 in 3.1 s, 50 % traffic 3/4 in 2.0 s, …" for summaries. */
export function formatGradualSteps(steps: readonly GradualStepData[] = []): string {
	return steps
		.map(
			(s) =>
				`${s.percentage} % ${s.via} ${s.health ? `${s.health.good}/${s.health.attempts}` : "-"} in ${(s.durationMs / 1000).toFixed(1)} s${s.ok ? "" : " FAILED"}`,
		)
		.join(", ");
}

/** The gradual strategy: upload with no traffic, verify through the override header, then step up. */
async function deployGradual(
	run: DeployRun,
	oldId: string,
	previous: LiveState,
	outputDir: string,
): Promise<string> {
	run.data.steps = [];
	let failedAt = "the upload";
	try {
		run.ctx.progress(
			`wrangler versions upload${envFlag(run.args.env)} --tag ${run.sha.slice(0, 12)}`,
		);
		const uploaded = await uploadVersion(run.ctx, run.target, uploadOf(run, outputDir));
		if (isAborted(run)) throw run.ctx.signal?.reason;
		if (!uploaded.ok) {
			run.findings.push({ code: "DEPLOY_FAILED", severity: "error", message: uploaded.message });
			run.data.rollback = { needed: false, reason: "no traffic was moved" };
			return `wrangler versions upload failed; ${oldId} is still live`;
		}
		run.data.versionId = uploaded.versionId;
		const url = gradualHealthUrl(run, uploaded.previewUrl);
		if (!url) {
			run.data.rollback = { needed: false, reason: "no traffic was moved" };
			return `version ${uploaded.versionId} uploaded but not deployed: no health URL; ${oldId} is still live`;
		}
		const context = { url, newId: uploaded.versionId, oldId };
		for (const percentage of [0, ...(run.args.steps ?? DEFAULT_GRADUAL_STEPS)]) {
			failedAt = `${percentage} %`;
			if (!(await runTrafficStep(run, { ...context, percentage })))
				return `${await rollBack(run, previous, `unhealthy at ${percentage} %`)} (${formatGradualSteps(run.data.steps)})`;
		}
		return `deployed ${run.sha.slice(0, 12)} as version ${uploaded.versionId} gradually (${(run.args.steps ?? DEFAULT_GRADUAL_STEPS).join(" → ")} %); health held at every step: ${formatGradualSteps(run.data.steps)}`;
	} catch (error) {
		if (!isAborted(run)) throw error;
		noteInterrupted(run, `the gradual deploy (${failedAt})`);
		return await rollBack(run, previous, "interrupted");
	}
}

/** Every phase in order; returns the summary. Findings and data accumulate on `run`. */
async function runPhases(run: DeployRun, outputDir: string): Promise<string> {
	const refused = checkBuild(run);
	if (refused) return refused;
	run.data.version = run.sha;
	run.data.expectedHead = readExpectedHead(run);
	const previous = await recordLive(run);
	if (!previous) return "stopped: the live version is unknown; nothing was deployed";
	if (previous.kind === "live" && previous.versions.length > 1) {
		run.findings.push({
			code: "DEPLOY_SPLIT_LIVE",
			severity: "error",
			message: `a split deployment is live (${previous.versions.map((v) => `${v.version_id} at ${v.percentage} %`).join(", ")}): finish it or put one version back at 100 % (\`workers-pipeline rollback${envFlag(run.args.env)} --to <id>\`) first. Nothing was migrated or deployed.`,
		});
		return "refused: a split deployment is live; nothing was deployed";
	}
	if (run.data.strategy === "gradual" && previous.kind === "none") {
		// Nothing to split traffic with: the first version goes to 100 % as it would anyway.
		run.data.strategy = "immediate";
		run.ctx.progress("first deploy: no live version to split traffic with, deploying at 100 %");
	}
	if (!run.args.skipMigrate && !(await migrateFirst(run)))
		return `migrate failed: nothing was deployed (${run.data.migrate?.summary ?? ""})`;
	if (isAborted(run)) {
		noteInterrupted(run, "migrate");
		return "interrupted before the upload: nothing was deployed";
	}
	return run.data.strategy === "gradual" && previous.kind === "live" && previous.versionId
		? deployGradual(run, previous.versionId, previous, outputDir)
		: deployImmediate(run, previous, outputDir);
}

export const deployStep = defineStep<DeployArgs>({
	name: "deploy",
	async run(ctx, args) {
		const started = performance.now();
		const { project } = args;
		refusePagesProject(project, "deploy");
		const environment = resolveEnvironment(project, args.env);
		if (!ctx.env.CLOUDFLARE_API_TOKEN || !ctx.env.CLOUDFLARE_ACCOUNT_ID) {
			throw new UserError(
				"CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID must be set (a token with Workers Scripts Edit and D1 Edit); nothing was sent.",
				"E_CONFIG_MISSING",
			);
		}
		const policy = planHealthPolicy(args);
		// Secret values are read only to keep them out of every output.
		const secrets = readDeploySecrets({
			root: project.root,
			secretsFile: args.secretsFile,
			secretsFromEnv: args.secretsFromEnv,
			env: ctx.env,
		});
		const run: DeployRun = {
			ctx: { ...ctx, progress: (line) => ctx.progress(secrets.redact(line)) },
			args,
			project,
			environment,
			target: { project, env: args.env },
			data: {
				environment: args.env || null,
				worker: environment.workerName,
				strategy: args.strategy ?? DEFAULT_DEPLOY_STRATEGY,
			},
			findings: [],
			secrets,
			sha: readGitSha(project.root, ctx.env) ?? "dev",
			policy,
			bookmark: null,
		};
		const outputDir = mkdtempSync(path.join(tmpdir(), "wp-deploy-"));
		try {
			const summary = await runPhases(run, outputDir);
			// Redacted as a whole: health bodies, wrangler output and migrate's data all end up here.
			return redactDeep(
				makeStepResult("deploy", started, {
					ok: !hasErrors(run.findings),
					summary,
					findings: run.findings,
					data: run.data,
				}),
				secrets.redact,
			);
		} finally {
			rmSync(outputDir, { recursive: true, force: true });
			secrets.dispose();
		}
	},
});

export const rollbackStep = defineStep<RollbackArgs>({
	name: "rollback",
	async run(ctx, args) {
		const started = performance.now();
		refusePagesProject(args.project, "rollback");
		resolveEnvironment(args.project, args.env);
		if (!ctx.env.CLOUDFLARE_API_TOKEN || !ctx.env.CLOUDFLARE_ACCOUNT_ID) {
			throw new UserError(
				"CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID must be set; nothing was sent.",
				"E_CONFIG_MISSING",
			);
		}
		const target = { project: args.project, env: args.env };
		const live = await readLiveState(ctx, target);
		if (live.kind === "unknown")
			throw new UserError(
				`cannot read the live version of the Worker: ${live.message}`,
				"E_WRANGLER",
			);
		const before = { versionId: live.kind === "live" ? live.versionId : undefined };
		if (live.kind === "none") {
			return makeStepResult("rollback", started, {
				ok: false,
				summary: "the Worker has never been deployed: nothing to roll back",
				findings: [
					{
						code: "ROLLBACK_IMPOSSIBLE",
						severity: "error",
						message: "no deployment found for this environment.",
					},
				],
			});
		}
		const result = await rollbackTo(ctx, target, {
			versionId: args.to,
			message: `workers-pipeline rollback by ${describeOwner(ctx.env)}`,
			signal: ctx.signal,
		});
		const findings: Finding[] = result.ok
			? []
			: [
					{
						code: "ROLLBACK_FAILED",
						severity: "error",
						message: `rollback could not be confirmed (live: ${result.live ?? "unknown"}):\n${result.output}`,
					},
				];
		if (result.ok && !args.to && result.live === before.versionId) {
			findings.push({
				code: "ROLLBACK_NOOP",
				severity: "error",
				message: "the live version did not change; pass --to <version-id>.",
			});
		}
		return makeStepResult("rollback", started, {
			ok: !hasErrors(findings),
			summary: result.ok
				? `live version is now ${result.live} (was ${before.versionId})`
				: "rollback failed",
			findings,
			data: {
				environment: args.env || null,
				from: before.versionId ?? null,
				to: result.live ?? null,
			},
		});
	},
});
