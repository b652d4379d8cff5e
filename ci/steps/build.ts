import { createHash } from "node:crypto";
import {
	existsSync,
	mkdirSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	rmSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";
import { gzipSync } from "node:zlib";
import { runWrangler, usesRedirectedConfig } from "../cloudflare/wrangler.ts";
import { isPagesProject, resolveEnvironment } from "../config/load.ts";
import type { ProjectConfig } from "../config/schema.ts";
import { listProjectFiles, readGitVersion } from "../git.ts";
import { localBin, runTool } from "../process.ts";
import type { Finding } from "../report/model.ts";
import { listWorkspaceInputs } from "./_cache.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import {
	detectFramework,
	explainScriptFailure,
	type Framework,
	LOCKFILES,
	mainIsModuleId,
	type PackageManager,
	readPackageJson,
	readPackageManager,
	scriptCommand,
} from "./_toolchain.ts";

export interface BuildArgs {
	project: ProjectConfig;
	/** Rebuild even when the inputs and version match the last build. */
	force?: boolean;
	/**
	 * The version to stamp, read before other steps ran (ci): a step running beside the build
	 * (lint's type generation) may change a tracked file for a moment, which is not this tree.
	 */
	version?: string;
	/**
	 * The wrangler environment to build for, as CLOUDFLARE_ENV: the Cloudflare Vite plugin builds
	 * one environment's Worker (name, bindings) and deploy ships it as built.
	 */
	env?: string;
}

export const BUILD_DIR = ".open-next";
export const BUILD_STAMP = ".open-next/.workers-pipeline-build.json";
export const FREE_PLAN_GZIP_KIB = 3072;
export const PAID_PLAN_GZIP_KIB = 10_240;

export interface BuildStamp {
	version: string;
	inputsHash: string;
	builtAt: string;
	upload: { rawBytes: number; gzipBytes: number; files: number };
}

/** Where a build that is not OpenNext's keeps its stamp (.wrangler is wrangler's own state dir). */
export const OTHER_BUILD_STAMP = ".wrangler/workers-pipeline-build.json";

// Build outputs and tool state: never inputs of a build (a build must not invalidate itself).
const OUTPUT_DIRS = [".open-next", ".next", ".wrangler", ".reports", "node_modules", ".git"];

/**
 * The project's files as git sees them (tracked, and untracked not ignored), every lockfile even
 * when ignored, minus build outputs: what a build's cache keys on.
 */
export function listBuildInputs(root: string, output?: string): string[] {
	const outputs = [
		...OUTPUT_DIRS,
		...(output ? [output.replace(/^\.\//, "").replace(/\/$/, "")] : []),
	];
	const isOutput = (file: string) =>
		outputs.some((dir) => file === dir || file.startsWith(`${dir}/`));
	const files = new Set(listProjectFiles(root).filter((file) => !isOutput(file)));
	for (const [lockfile] of LOCKFILES)
		if (existsSync(path.join(root, lockfile))) files.add(lockfile);
	// A monorepo's app: the workspace lockfile and the workspace packages it bundles.
	for (const file of listWorkspaceInputs(root)) files.add(file);
	return [...files].sort();
}

/** A hash of every build input's path and bytes, plus the version the build stamps. */
export function hashBuildInputs(
	root: string,
	version: string,
	output?: string,
	environment?: string,
): string {
	const hash = createHash("sha256").update(`version:${version}\n`);
	if (environment) hash.update(`environment:${environment}\n`);
	for (const file of listBuildInputs(root, output)) {
		hash.update(`${file}\n`);
		try {
			hash.update(readFileSync(path.join(root, file)));
		} catch {
			hash.update("<missing>");
		}
	}
	return hash.digest("hex");
}

/** What to do about a refusal of wrangler's a user meets with a framework's default layout. */
function bundleHint(output: string, project: ProjectConfig): string {
	// wrangler's assets check (deploy/assets.ts): a Worker directory inside the assets directory.
	if (/_worker\.js directory as an asset|\.assetsignore/.test(output)) {
		const directory = (project.wrangler as { assets?: { directory?: unknown } }).assets?.directory;
		const assets = typeof directory === "string" ? directory : "the assets directory";
		return `\nThe build put the Worker itself (_worker.js) in ${assets}, which wrangler uploads as assets: list it in a .assetsignore there (an Astro app: public/.assetsignore with the lines _worker.js and _routes.json, copied into dist by the build).`;
	}
	return "";
}

/** The commit the build is of; `<sha>-dirty` when tracked or untracked (not ignored) files differ from it. */
export const buildVersion = (root: string, env: StepContext["env"]): string =>
	readGitVersion(root, env) ?? "dev";

/** The newest stamp: OpenNext's (in .open-next) or another build's (in .wrangler). */
export function readBuildStamp(root: string): BuildStamp | undefined {
	const stamps = [BUILD_STAMP, OTHER_BUILD_STAMP].flatMap((file) => {
		try {
			return [JSON.parse(readFileSync(path.join(root, file), "utf8")) as BuildStamp];
		} catch {
			return [];
		}
	});
	return stamps.sort((a, b) => (a.builtAt < b.builtAt ? 1 : -1))[0];
}

/** What `wrangler deploy` would upload: bundle with --dry-run, then measure raw and gzip sizes. */
async function measureUpload(
	project: ProjectConfig,
	env: Readonly<Record<string, string | undefined>>,
) {
	const outdir = mkdtempSync(path.join(tmpdir(), "wp-bundle-"));
	try {
		// A build by @cloudflare/vite-plugin (Vite, React Router, Astro) writes the config to deploy
		// and points .wrangler/deploy/config.json at it; wrangler follows that only without --config
		// (findWranglerConfig → findRedirectedWranglerConfig in wrangler's config loading).
		const redirected = usesRedirectedConfig(project);
		const result = await runWrangler({
			args: [
				"deploy",
				"--dry-run",
				"--outdir",
				outdir,
				...(redirected ? [] : ["--config", project.wranglerPath]),
			],
			cwd: project.root,
			projectRoot: project.root,
			env: { ...env, WRANGLER_LOG_PATH: path.join(outdir, ".logs") },
			timeoutMs: 5 * 60_000,
		});
		if (result.failed) {
			const output = stripVTControlCharacters(result.stderr || result.stdout);
			const tail = output.trim().split("\n").slice(-10).join("\n").trim();
			return { error: `${tail}${bundleHint(output, project)}` };
		}
		let rawBytes = 0;
		let gzipBytes = 0;
		let files = 0;
		for (const entry of readdirSync(outdir, { withFileTypes: true, recursive: true })) {
			if (!entry.isFile() || entry.name.endsWith(".map") || entry.parentPath.includes(".logs"))
				continue;
			const bytes = readFileSync(path.join(entry.parentPath, entry.name));
			rawBytes += bytes.length;
			gzipBytes += gzipSync(bytes).length;
			files++;
		}
		return { rawBytes, gzipBytes, files };
	} finally {
		rmSync(outdir, { recursive: true, force: true });
	}
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

/** Pure: the size verdict against the budget and the plan limits. */
export function judgeBundleSize(gzipBytes: number, budgetGzipKiB: number): Finding[] {
	const gzipKiB = gzipBytes / 1024;
	if (gzipKiB > budgetGzipKiB) {
		const plan =
			gzipKiB > PAID_PLAN_GZIP_KIB
				? "over the 10 MiB limit of paid plans: it cannot be deployed"
				: gzipKiB > FREE_PLAN_GZIP_KIB
					? "over the 3 MiB free-plan limit (paid plans allow 10 MiB)"
					: "within the Workers limits";
		return [
			{
				code: "BUNDLE_TOO_LARGE",
				severity: "error",
				message: `the Worker upload is ${kib(gzipBytes)} gzip, over the budget of ${budgetGzipKiB} KiB (build.budgetGzipKiB) and ${plan}. Find what grew (\`wrangler deploy --dry-run --outdir dist --metafile\`), trim dependencies, or raise the budget on purpose.`,
			},
		];
	}
	if (gzipKiB > budgetGzipKiB * 0.8) {
		return [
			{
				code: "BUNDLE_NEAR_BUDGET",
				severity: "warning",
				message: `the Worker upload is ${kib(gzipBytes)} gzip, over 80% of the ${budgetGzipKiB} KiB budget.`,
			},
		];
	}
	return [];
}

type Argv = [string, ...string[]];

/** How this project is built: OpenNext, its own command, or only wrangler's bundle of `main`. */
export type BuildPlan =
	| { kind: "opennext"; argv: Argv; output: string; entry: string }
	| { kind: "command"; argv: Argv; source: string; output: string | undefined }
	| { kind: "wrangler" }
	| { kind: "none"; reason: string };

// Frameworks whose Worker exists only after their own build (a `main` in dist/, or a generated config).
const BUILT_FRAMEWORKS = new Set<Framework>(["vite", "remix", "astro"]);

/** Pure: build.command, else OpenNext, else the `build` script of a Vite/Remix/Astro app, else wrangler alone. */
export function planBuild(inputs: {
	settings: ProjectConfig["settings"]["build"];
	isOpenNext: boolean;
	framework: Framework;
	scripts: Record<string, string>;
	hasMain: boolean;
	/** A path the wrangler config names that the build writes (`main`, `assets.directory`): not a source file. */
	generated?: string;
	pm: PackageManager;
	envPath: string | undefined;
	/** A Pages project's pages_build_output_dir (from the project root): what its build writes. */
	pagesOutput?: string;
}): BuildPlan {
	const { settings } = inputs;
	if (settings.command) {
		return {
			kind: "command",
			argv: settings.command as Argv,
			source: "build.command",
			output: settings.output,
		};
	}
	if (inputs.isOpenNext) {
		// Never the project's `build` script: OpenNext runs that one itself (endless recursion).
		return {
			kind: "opennext",
			argv: ["opennextjs-cloudflare", "build"],
			output: BUILD_DIR,
			entry: `${BUILD_DIR}/worker.js`,
		};
	}
	// A Pages project: its own build writes the directory Pages serves; there is no Worker to bundle.
	if (inputs.pagesOutput !== undefined) {
		return inputs.scripts.build
			? {
					kind: "command",
					argv: scriptCommand(inputs.pm, "build", inputs.envPath),
					source: "build script of a Pages project",
					output: settings.output ?? inputs.pagesOutput,
				}
			: {
					kind: "none",
					reason: `nothing to build: a Pages project with no build script (Pages serves ${inputs.pagesOutput} as it is)`,
				};
	}
	// Any framework (SvelteKit, Nuxt, React Router…) whose Worker only its build writes.
	if ((BUILT_FRAMEWORKS.has(inputs.framework) || inputs.generated) && inputs.scripts.build) {
		return {
			kind: "command",
			argv: scriptCommand(inputs.pm, "build", inputs.envPath),
			source: inputs.generated ? `build script, as ${inputs.generated} is built` : "build script",
			// What must exist after it (and for a cached build to count as built).
			output: settings.output ?? inputs.generated,
		};
	}
	if (inputs.hasMain) return { kind: "wrangler" };
	return {
		kind: "none",
		reason:
			"nothing to build: no open-next.config, no build.command and no `main` in the wrangler config",
	};
}

/**
 * The first path the wrangler config names (`main`, then `assets.directory`) that is not among the
 * project's files (git's view: missing, or ignored as build output): what only a build writes.
 */
export function readGeneratedEntry(project: ProjectConfig): string | undefined {
	const assets = (project.wrangler as { assets?: { directory?: unknown } }).assets?.directory;
	// A module id the Vite plugin resolves is no file to wait for: the build's own config is.
	const main = mainIsModuleId(project.root, project.wrangler.main)
		? undefined
		: project.wrangler.main;
	const named = [main, typeof assets === "string" ? assets : undefined];
	const configDir = path.dirname(project.wranglerPath);
	let files: Set<string> | undefined;
	for (const entry of named) {
		if (!entry) continue;
		const rel = path
			.relative(project.root, path.resolve(configDir, entry))
			.replaceAll(path.sep, "/");
		files ??= new Set(listProjectFiles(project.root));
		const isSource = files.has(rel) || [...files].some((file) => file.startsWith(`${rel}/`));
		if (!isSource) return rel;
	}
	return undefined;
}

function readBuildPlan(project: ProjectConfig, envPath: string | undefined): BuildPlan {
	const pkg = readPackageJson(project.root);
	return planBuild({
		settings: project.settings.build,
		isOpenNext: readdirSync(project.root).some((f) =>
			/^open-next\.config\.(ts|js|mjs|cjs)$/.test(f),
		),
		framework: detectFramework(pkg),
		scripts: pkg?.scripts ?? {},
		hasMain: Boolean(project.wrangler.main),
		generated: pkg?.scripts?.build ? readGeneratedEntry(project) : undefined,
		pm: readPackageManager(project.root),
		envPath,
		pagesOutput: readPagesOutput(project),
	});
}

/** A Pages project's pages_build_output_dir, from the project root as wrangler resolves it (from the config's directory). */
function readPagesOutput(project: ProjectConfig): string | undefined {
	const dir = (project.wrangler as { pages_build_output_dir?: unknown }).pages_build_output_dir;
	if (typeof dir !== "string") return undefined;
	const resolved = path.resolve(path.dirname(project.wranglerPath), dir);
	return path.relative(project.root, resolved).replaceAll(path.sep, "/") || ".";
}

const isDirectory = (file: string) => existsSync(file) && statSync(file).isDirectory();

/** What a build report carries: the stamp of the build in place, rebuilt or not. */
export type BuildData = {
	cached: boolean;
	version: string;
	inputsHash: string;
	builtAt: string;
	upload: BuildStamp["upload"];
	/** OpenNext's worker.js, when there is one. */
	workerEntryBytes?: number;
};

const failed = (started: number, summary: string, findings: Finding[]) =>
	makeStepResult<BuildData>("build", started, { ok: false, summary, findings });

/** `build`: the app's build (OpenNext, build.command, a framework's build script), then the upload size against the budget. */
export const buildStep = defineStep<BuildArgs, BuildData>({
	name: "build",
	async run(ctx, { project, force, version: givenVersion, env }) {
		const started = performance.now();
		// CLOUDFLARE_ENV exported in the shell chooses as --env does (the plugin and wrangler read it).
		const environment = env ?? (ctx.env.CLOUDFLARE_ENV || undefined);
		// An environment the config lacks is a usage error here, before any build runs.
		if (environment) resolveEnvironment(project, environment);
		const plan = readBuildPlan(project, ctx.env.PATH);
		if (plan.kind === "none") {
			return makeStepResult("build", started, {
				ok: true,
				skipped: true,
				summary: plan.reason,
				findings: [],
			});
		}
		const output = plan.kind === "opennext" || plan.kind === "command" ? plan.output : undefined;
		const version = givenVersion ?? buildVersion(project.root, ctx.env);
		const inputsHash = hashBuildInputs(project.root, version, output, environment);
		// CLOUDFLARE_ENV picks the environment in the Cloudflare Vite plugin's build and in wrangler.
		const buildEnv = environment ? { ...ctx.env, CLOUDFLARE_ENV: environment } : ctx.env;
		const previous = readBuildStamp(project.root);
		const budget = project.settings.build.budgetGzipKiB;
		const built = (p: BuildPlan) =>
			p.kind === "opennext"
				? existsSync(path.join(project.root, p.entry))
				: p.kind === "command" && p.output
					? existsSync(path.join(project.root, p.output))
					: true;
		if (!force && previous?.inputsHash === inputsHash && built(plan)) {
			const findings = judgeBundleSize(previous.upload.gzipBytes, budget);
			return makeStepResult("build", started, {
				ok: !findings.some((f) => f.severity === "error"),
				summary: `up to date (inputs unchanged since ${previous.builtAt}); upload ${kib(previous.upload.rawBytes)} raw, ${kib(previous.upload.gzipBytes)} gzip`,
				findings,
				data: { cached: true, ...previous },
			});
		}
		if (plan.kind === "opennext" && !localBin(project.root, "opennextjs-cloudflare")) {
			return failed(started, "@opennextjs/cloudflare is not installed", [
				{
					code: "BUILD_TOOL_MISSING",
					severity: "error",
					message:
						"no node_modules/.bin/opennextjs-cloudflare in the project; install the project's dependencies (it needs @opennextjs/cloudflare).",
				},
			]);
		}
		if (plan.kind === "opennext" || plan.kind === "command") {
			ctx.progress(plan.argv.join(" "));
			const [file, ...args] = plan.argv;
			const result = await runTool({
				file,
				args,
				cwd: project.root,
				env: { ...buildEnv, NEXT_TELEMETRY_DISABLED: "1", WORKERS_PIPELINE_VERSION: version },
				signal: ctx.signal,
			});
			const missing =
				plan.kind === "opennext" ? !built(plan) : plan.output !== undefined && !built(plan);
			if (result.failed || missing) {
				const why = result.failed
					? explainScriptFailure({
							argv: plan.argv,
							output: result.stdout + result.stderr,
							pm: readPackageManager(project.root),
						})
					: undefined;
				return failed(
					started,
					`${plan.argv.join(" ")} failed (exit ${result.exitCode ?? result.signal})`,
					[
						{
							code: "BUILD_FAILED",
							severity: "error",
							message: `${missing && !result.failed ? `${plan.argv.join(" ")} succeeded but wrote no ${plan.kind === "opennext" ? plan.entry : plan.output}; set build.output to where the build writes.\n` : ""}${why ? `${why}.\n` : ""}${(result.stdout + result.stderr).trimEnd().split("\n").slice(-40).join("\n")}`,
						},
					],
				);
			}
		}
		if (isPagesProject(project) && plan.kind === "command") {
			// wrangler deploy --dry-run refuses a Pages project: there is no Worker upload to measure.
			return makeStepResult("build", started, {
				ok: true,
				summary: `built with ${plan.argv.join(" ")} (${plan.source})${plan.output ? ` into ${plan.output}` : ""}; a Pages project: no Worker upload to measure or stamp (deploy it with wrangler pages deploy)`,
				findings: [],
			});
		}
		ctx.progress("measuring the upload (wrangler deploy --dry-run)");
		const upload = await measureUpload(project, buildEnv);
		if ("error" in upload) {
			return failed(started, "wrangler deploy --dry-run refused the build", [
				{ code: "BUNDLE_FAILED", severity: "error", message: upload.error ?? "unknown error" },
			]);
		}
		const stamp: BuildStamp = { version, inputsHash, builtAt: new Date().toISOString(), upload };
		const stampFile = path.join(
			project.root,
			plan.kind === "opennext" ? BUILD_STAMP : OTHER_BUILD_STAMP,
		);
		mkdirSync(path.dirname(stampFile), { recursive: true });
		writeFileSync(stampFile, `${JSON.stringify(stamp, null, 2)}\n`);
		const findings = judgeBundleSize(upload.gzipBytes, budget);
		const entry = path.join(project.root, BUILD_DIR, "worker.js");
		const workerBytes =
			plan.kind === "opennext" && existsSync(entry) ? statSync(entry).size : undefined;
		const how =
			plan.kind === "opennext"
				? ` into ${BUILD_DIR}/`
				: plan.kind === "command"
					? ` with ${plan.argv.join(" ")} (${plan.source})${plan.output ? ` into ${plan.output}${isDirectory(path.join(project.root, plan.output)) ? "/" : ""}` : ""}`
					: " (wrangler bundle)";
		return makeStepResult("build", started, {
			ok: !findings.some((f) => f.severity === "error"),
			summary: `built ${version.slice(0, 12)}${version.endsWith("-dirty") ? "-dirty" : ""}${how}; upload ${kib(upload.rawBytes)} raw, ${kib(upload.gzipBytes)} gzip (budget ${budget} KiB; limits 3 MiB free, 10 MiB paid)`,
			findings,
			data: { cached: false, ...stamp, workerEntryBytes: workerBytes },
		});
	},
});
