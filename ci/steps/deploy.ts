import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { sleep } from "../cloudflare/d1-client.ts";
import { runWrangler } from "../cloudflare/wrangler.ts";
import { resolveEnvironment } from "../config/load.ts";
import type { ProjectConfig } from "../config/schema.ts";
import { DEFAULT_HEALTH_TIMEOUT_SECONDS } from "../constants.ts";
import { UserError } from "../errors.ts";
import { type Finding, hasErrors, type StepResult } from "../report/model.ts";
import { describeOwner, gitSha } from "./_remote.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import { readBuildStamp } from "./build.ts";
import { migrateStep } from "./migrate.ts";

export { DEFAULT_HEALTH_TIMEOUT_SECONDS };

export interface DeployArgs {
	project: ProjectConfig;
	env: string;
	binding?: string;
	skipMigrate?: boolean;
	healthTimeoutSeconds?: number;
	/** A JSON or .env file of Worker secrets, uploaded with the version. */
	secretsFile?: string;
	/** Names of environment variables to upload as Worker secrets. */
	secretsFromEnv?: string[];
	autoRestore?: boolean;
	lockTimeoutSeconds?: number;
}

export interface RollbackArgs {
	project: ProjectConfig;
	env: string;
	to?: string;
}

/** Secret values from a JSON object or a .env file; read only to keep them out of output. */
export function parseSecretsFile(text: string): Record<string, string> {
	const trimmed = text.trim();
	if (trimmed.startsWith("{")) {
		const parsed = JSON.parse(trimmed) as Record<string, unknown>;
		return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
	}
	const out: Record<string, string> = {};
	for (const line of text.split(/\r?\n/)) {
		const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
		if (!match) continue;
		const raw = match[2] as string;
		// As dotenv reads it: a quoted value ends at its closing quote; an unquoted one at ` #`.
		const quoted = /^(["'])(.*?)\1\s*(?:#.*)?$/.exec(raw);
		out[match[1] as string] = quoted ? (quoted[2] as string) : raw.replace(/\s+#.*$/, "");
	}
	return out;
}

function readSecrets(text: string, file: string): Record<string, string> {
	try {
		return parseSecretsFile(text);
	} catch (error) {
		throw new UserError(
			`--secrets-file ${file} is not valid JSON (${(error as Error).message}); use a JSON object or KEY=value lines.`,
			"E_USAGE",
		);
	}
}

const redactWith = (secrets: readonly string[]) => (text: string) =>
	secrets.filter((s) => s.length >= 4).reduce((out, s) => out.split(s).join("***"), text);

const tail = (text: string, n = 15) => text.trimEnd().split("\n").slice(-n).join("\n");

interface LiveVersion {
	versionId: string | undefined;
	/** True when the Worker has never been deployed. */
	firstDeploy: boolean;
}

/** The version serving 100% of traffic, from `wrangler deployments status --json`. */
export async function readLiveVersion(
	ctx: StepContext,
	project: ProjectConfig,
	env: string,
): Promise<LiveVersion> {
	const result = await runWrangler({
		args: ["deployments", "status", "--json", "--config", project.wranglerPath, "--env", env],
		cwd: project.root,
		projectRoot: project.root,
		env: ctx.env,
		timeoutMs: 120_000,
		signal: ctx.signal,
	});
	if (result.failed) {
		const output = result.stdout + result.stderr;
		// wrangler reports a Worker that does not exist yet with API code 10007.
		if (/10007|does not exist|not found/i.test(output))
			return { versionId: undefined, firstDeploy: true };
		throw new UserError(
			`cannot read the live version of the Worker: ${tail(output, 8)}`,
			"E_WRANGLER",
		);
	}
	const start = result.stdout.indexOf("{");
	const status = JSON.parse(result.stdout.slice(start)) as {
		versions?: { version_id: string; percentage: number }[];
	};
	const live = status.versions?.find((v) => v.percentage === 100) ?? status.versions?.[0];
	return { versionId: live?.version_id, firstDeploy: !live };
}

export interface HealthObservation {
	ok: boolean;
	attempts: number;
	lastStatus: number | undefined;
	lastBody: unknown;
	reason: string;
}

/** Polls the health URL with backoff until it reports the expected version and `status: ok`, or the deadline. */
export async function waitForHealth(
	url: string,
	expectedVersion: string,
	{
		timeoutMs,
		signal,
		onAttempt,
	}: { timeoutMs: number; signal?: AbortSignal; onAttempt?: (o: string) => void },
): Promise<HealthObservation> {
	const deadline = Date.now() + timeoutMs;
	let attempts = 0;
	let delay = 500;
	let lastStatus: number | undefined;
	let lastBody: unknown;
	let reason = "no answer";
	while (Date.now() < deadline) {
		attempts++;
		try {
			const response = await fetch(url, {
				headers: { accept: "application/json", "cache-control": "no-store" },
				signal: AbortSignal.any([
					AbortSignal.timeout(Math.max(500, Math.min(5000, deadline - Date.now()))),
					...(signal ? [signal] : []),
				]),
			});
			lastStatus = response.status;
			const text = await response.text();
			try {
				lastBody = JSON.parse(text);
			} catch {
				lastBody = text.slice(0, 200);
			}
			const body = (lastBody ?? {}) as { status?: string; version?: string; reason?: string };
			if (response.ok && body.status === "ok" && body.version === expectedVersion) {
				return { ok: true, attempts, lastStatus, lastBody, reason: "healthy" };
			}
			reason =
				body.version && body.version !== expectedVersion
					? `serving version ${body.version}, not ${expectedVersion} yet`
					: `HTTP ${response.status}${body.reason ? `: ${body.reason}` : body.status ? ` status ${body.status}` : ""}`;
		} catch (error) {
			if (signal?.aborted) throw error;
			reason = `no answer (${(error as Error).message})`;
		}
		onAttempt?.(reason);
		const wait = Math.min(delay, Math.max(0, deadline - Date.now()));
		if (wait <= 0) break;
		await sleep(wait, signal);
		delay = Math.min(delay * 2, 5000);
	}
	return {
		ok: false,
		attempts,
		lastStatus,
		lastBody,
		reason: `timed out after ${Math.round(timeoutMs / 1000)} s: ${reason}`,
	};
}

/** The `type: "deploy"` entry wrangler writes to WRANGLER_OUTPUT_FILE_PATH. */
export function parseDeployOutput(ndjson: string): {
	versionId: string | undefined;
	targets: string[];
} {
	for (const line of ndjson.split("\n")) {
		if (!line.trim()) continue;
		try {
			const entry = JSON.parse(line) as { type?: string; version_id?: string; targets?: string[] };
			if (entry.type === "deploy")
				return { versionId: entry.version_id, targets: entry.targets ?? [] };
		} catch {
			// Not JSON: ignore.
		}
	}
	return { versionId: undefined, targets: [] };
}

/** `wrangler rollback <id>`, then confirm the live version really is that id. */
async function rollbackTo(
	ctx: StepContext,
	project: ProjectConfig,
	env: string,
	versionId: string | undefined,
	message: string,
) {
	const result = await runWrangler({
		args: [
			"rollback",
			...(versionId ? [versionId] : []),
			"--config",
			project.wranglerPath,
			"--env",
			env,
			"--message",
			message,
			"-y",
		],
		cwd: project.root,
		projectRoot: project.root,
		env: ctx.env,
		timeoutMs: 120_000,
		signal: ctx.signal,
	});
	const reported = /Current Version ID:\s*([0-9a-f-]{36})/i.exec(result.stdout)?.[1];
	const live = await readLiveVersion(ctx, project, env).catch(() => ({
		versionId: undefined,
		firstDeploy: false,
	}));
	return {
		ok:
			!result.failed &&
			live.versionId !== undefined &&
			(versionId === undefined || live.versionId === versionId),
		live: live.versionId,
		reported,
		output: tail(result.stdout + result.stderr),
	};
}

export const deployStep = defineStep<DeployArgs>({
	name: "deploy",
	async run(ctx, args) {
		const started = performance.now();
		const { project } = args;
		const environment = resolveEnvironment(project, args.env);
		const findings: Finding[] = [];
		const data: Record<string, unknown> = { environment: args.env, worker: environment.workerName };
		const finish = (summary: string): StepResult =>
			makeStepResult("deploy", started, { ok: !hasErrors(findings), summary, findings, data });
		if (!ctx.env.CLOUDFLARE_API_TOKEN || !ctx.env.CLOUDFLARE_ACCOUNT_ID) {
			throw new UserError(
				"CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID must be set (a token with Workers Scripts Edit and D1 Edit); nothing was sent.",
				"E_CONFIG_MISSING",
			);
		}

		// Secrets: values are read only to keep them out of every output.
		const secretValues: string[] = [];
		let secretsFile = args.secretsFile ? path.resolve(project.root, args.secretsFile) : undefined;
		let tempSecrets: string | undefined;
		if (secretsFile) {
			let text: string;
			try {
				text = readFileSync(secretsFile, "utf8");
			} catch (error) {
				throw new UserError(
					`cannot read --secrets-file ${args.secretsFile}: ${(error as NodeJS.ErrnoException).code}`,
					"E_USAGE",
				);
			}
			secretValues.push(...Object.values(readSecrets(text, args.secretsFile as string)));
		}
		if (args.secretsFromEnv?.length) {
			const fromEnv: Record<string, string> = {};
			for (const name of args.secretsFromEnv) {
				const value = ctx.env[name];
				if (value === undefined)
					throw new UserError(
						`--secrets-from-env names ${name}, which is not set in the environment.`,
						"E_USAGE",
					);
				fromEnv[name] = value;
			}
			if (secretsFile) {
				Object.assign(
					fromEnv,
					readSecrets(readFileSync(secretsFile, "utf8"), args.secretsFile as string),
				);
			}
			secretValues.push(...Object.values(fromEnv));
			tempSecrets = mkdtempSync(path.join(tmpdir(), "wp-secrets-"));
			secretsFile = path.join(tempSecrets, "secrets.json");
			writeFileSync(secretsFile, JSON.stringify(fromEnv), { mode: 0o600 });
			chmodSync(secretsFile, 0o600);
		}
		const redact = redactWith(secretValues);

		const outputDir = mkdtempSync(path.join(tmpdir(), "wp-deploy-"));
		try {
			// Never deploy something other than this commit's build.
			const sha = gitSha(project.root, ctx.env) ?? "dev";
			const stamp = readBuildStamp(project.root);
			if (!stamp || stamp.version !== sha) {
				findings.push({
					code: "BUILD_MISSING",
					severity: "error",
					message: stamp
						? `.open-next was built from ${stamp.version.slice(0, 12)}, not the current commit ${sha.slice(0, 12)}; run \`workers-pipeline build\` first.`
						: "no build found (.open-next/.workers-pipeline-build.json); run `workers-pipeline build` first.",
				});
				return finish("refused: no build of the current commit; nothing was deployed");
			}
			data.version = sha;

			ctx.progress("reading the live version");
			const previous = await readLiveVersion(ctx, project, args.env);
			data.previousVersionId = previous.versionId ?? null;

			let bookmark: string | null = null;
			if (!args.skipMigrate) {
				ctx.progress("migrating D1 before the deploy");
				const migrate = await migrateStep.run(ctx, {
					project,
					env: args.env,
					binding: args.binding,
					autoRestore: args.autoRestore,
					lockTimeoutSeconds: args.lockTimeoutSeconds,
				});
				findings.push(...migrate.findings);
				data.migrate = { ok: migrate.ok, summary: migrate.summary, ...migrate.data };
				bookmark = (migrate.data?.bookmark as string | null | undefined) ?? null;
				if (!migrate.ok) return finish(`migrate failed: nothing was deployed (${migrate.summary})`);
			}

			ctx.progress(`wrangler deploy --env ${args.env} --tag ${sha.slice(0, 12)}`);
			const outputFile = path.join(outputDir, "wrangler-output.ndjson");
			const message = `workers-pipeline deploy ${sha.slice(0, 12)} by ${describeOwner(ctx.env)}`;
			// --config keeps wrangler from handing off to `opennextjs-cloudflare deploy` (which would
			// rebuild and pass our arguments through a shell); the build is already made.
			const deploy = await runWrangler({
				args: [
					"deploy",
					"--config",
					project.wranglerPath,
					"--env",
					args.env,
					"--tag",
					sha,
					"--message",
					message,
					...(secretsFile ? ["--secrets-file", secretsFile] : []),
				],
				cwd: project.root,
				projectRoot: project.root,
				env: { ...ctx.env, WRANGLER_OUTPUT_FILE_PATH: outputFile, OPEN_NEXT_DEPLOY: "true" },
				timeoutMs: 10 * 60_000,
				signal: ctx.signal,
			});
			let output = "";
			try {
				output = readFileSync(outputFile, "utf8");
			} catch {
				// No output file: wrangler failed early.
			}
			const deployed = parseDeployOutput(output);
			data.versionId = deployed.versionId ?? null;
			data.targets = deployed.targets;
			if (deploy.failed || !deployed.versionId) {
				findings.push({
					code: "DEPLOY_FAILED",
					severity: "error",
					message: `wrangler deploy failed (exit ${deploy.exitCode ?? deploy.signal}):\n${redact(tail(deploy.stdout + deploy.stderr))}`,
				});
				const live = await readLiveVersion(ctx, project, args.env).catch(() => previous);
				if (live.versionId === previous.versionId) {
					data.rollback = { needed: false, reason: "the live version did not change" };
					return finish("wrangler deploy failed; the previous version is still live");
				}
			}

			let healthy = false;
			if (deployed.versionId) {
				const healthUrl =
					project.settings.deploy.healthUrls[args.env] ??
					(deployed.targets[0]
						? new URL(project.settings.deploy.healthPath, deployed.targets[0]).toString()
						: undefined);
				data.healthUrl = healthUrl ?? null;
				if (!healthUrl) {
					findings.push({
						code: "HEALTH_NO_URL",
						severity: "error",
						message: `wrangler reported no URL for the Worker; set deploy.healthUrls.${args.env} in workers-pipeline.jsonc.`,
					});
				} else {
					const timeoutMs = (args.healthTimeoutSeconds ?? DEFAULT_HEALTH_TIMEOUT_SECONDS) * 1000;
					ctx.progress(`waiting for ${healthUrl} to report version ${sha.slice(0, 12)}`);
					const health = await waitForHealth(healthUrl, sha, {
						timeoutMs,
						signal: ctx.signal,
						onAttempt: (reason) => ctx.progress(`health: ${reason}`),
					});
					data.health = health;
					healthy = health.ok;
					if (!health.ok) {
						findings.push({
							code: "HEALTH_FAILED",
							severity: "error",
							message: `${healthUrl} did not report a healthy ${sha.slice(0, 12)}: ${health.reason}.`,
						});
					}
				}
			}
			if (healthy && !hasErrors(findings)) {
				return finish(`deployed ${sha.slice(0, 12)} as version ${deployed.versionId}; health ok`);
			}

			// Unhealthy: put the recorded version back, and say plainly what a Worker rollback does not undo.
			const d1Note = bookmark
				? `D1 was not rolled back: a Worker rollback does not undo migrations. If the new schema is the problem, restore the database with: workers-pipeline restore --env ${args.env} --bookmark ${bookmark}`
				: "D1 was not changed by this deploy.";
			if (!previous.versionId) {
				data.rollback = { attempted: false, reason: "first deploy" };
				findings.push({
					code: "ROLLBACK_IMPOSSIBLE",
					severity: "error",
					message: `this was the first deploy of ${environment.workerName}: there is no earlier version to roll back to, so version ${deployed.versionId ?? "(unknown)"} stays live. Fix forward, or remove it with \`wrangler delete --env ${args.env}\`. ${d1Note}`,
				});
				return finish("unhealthy first deploy: nothing to roll back to");
			}
			ctx.progress(`rolling back to ${previous.versionId}`);
			const rollback = await rollbackTo(
				ctx,
				project,
				args.env,
				previous.versionId,
				`workers-pipeline: health check failed for ${sha.slice(0, 12)}`,
			);
			data.rollback = {
				attempted: true,
				to: previous.versionId,
				confirmed: rollback.ok,
				live: rollback.live ?? null,
			};
			findings.push(
				rollback.ok
					? {
							code: "ROLLED_BACK",
							severity: "error",
							message: `rolled back to the recorded version ${previous.versionId} (confirmed live). ${d1Note}`,
						}
					: {
							code: "ROLLBACK_FAILED",
							severity: "error",
							message: `rollback to ${previous.versionId} could not be confirmed (live: ${rollback.live ?? "unknown"}):\n${redact(rollback.output)}\nRun \`workers-pipeline rollback --env ${args.env} --to ${previous.versionId}\` now. ${d1Note}`,
						},
			);
			return finish(
				rollback.ok
					? `unhealthy: rolled back to ${previous.versionId}`
					: "unhealthy and the rollback is unconfirmed",
			);
		} finally {
			rmSync(outputDir, { recursive: true, force: true });
			if (tempSecrets) rmSync(tempSecrets, { recursive: true, force: true });
		}
	},
});

export const rollbackStep = defineStep<RollbackArgs>({
	name: "rollback",
	async run(ctx, args) {
		const started = performance.now();
		resolveEnvironment(args.project, args.env);
		if (!ctx.env.CLOUDFLARE_API_TOKEN || !ctx.env.CLOUDFLARE_ACCOUNT_ID) {
			throw new UserError(
				"CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID must be set; nothing was sent.",
				"E_CONFIG_MISSING",
			);
		}
		const before = await readLiveVersion(ctx, args.project, args.env);
		if (before.firstDeploy) {
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
		const result = await rollbackTo(
			ctx,
			args.project,
			args.env,
			args.to,
			`workers-pipeline rollback by ${describeOwner(ctx.env)}`,
		);
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
			data: { environment: args.env, from: before.versionId ?? null, to: result.live ?? null },
		});
	},
});
