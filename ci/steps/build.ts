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
import { runWrangler } from "../cloudflare/wrangler.ts";
import type { ProjectConfig } from "../config/schema.ts";
import { readGitSha } from "../git.ts";
import { localBin, runTool } from "../process.ts";
import type { Finding } from "../report/model.ts";
import { defineStep, makeStepResult } from "./_step.ts";

export interface BuildArgs {
	project: ProjectConfig;
	/** Rebuild even when the inputs and version match the last build. */
	force?: boolean;
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

// What a build depends on; anything else (tests, docs, ci/) cannot change the Worker.
const INPUT_DIRS = ["src", "app", "pages", "public", "migrations"];
const INPUT_FILES =
	/^(next\.config\.\w+|open-next\.config\.\w+|wrangler\.jsonc?|package-lock\.json|tsconfig(\.\w+)?\.json|middleware\.\w+)$/;

function listInputs(root: string): string[] {
	const files = readdirSync(root).filter((f) => INPUT_FILES.test(f));
	const walk = (dir: string): string[] =>
		readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
			const rel = `${dir}/${e.name}`;
			if (e.isDirectory())
				return e.name === "node_modules" || e.name.startsWith(".") ? [] : walk(rel);
			return e.isFile() ? [rel] : [];
		});
	for (const dir of INPUT_DIRS) if (existsSync(path.join(root, dir))) files.push(...walk(dir));
	return files.sort();
}

/** A hash of every build input's path and bytes, plus the version the build inlines. */
export function hashBuildInputs(root: string, version: string): string {
	const hash = createHash("sha256").update(`version:${version}\n`);
	for (const file of listInputs(root)) {
		hash.update(`${file}\n`).update(readFileSync(path.join(root, file)));
	}
	return hash.digest("hex");
}

export function readBuildStamp(root: string): BuildStamp | undefined {
	try {
		return JSON.parse(readFileSync(path.join(root, BUILD_STAMP), "utf8")) as BuildStamp;
	} catch {
		return undefined;
	}
}

/** What `wrangler deploy` would upload: bundle with --dry-run, then measure raw and gzip sizes. */
async function measureUpload(
	project: ProjectConfig,
	env: Readonly<Record<string, string | undefined>>,
) {
	const outdir = mkdtempSync(path.join(tmpdir(), "wp-bundle-"));
	try {
		const result = await runWrangler({
			args: ["deploy", "--dry-run", "--outdir", outdir, "--config", project.wranglerPath],
			cwd: project.root,
			projectRoot: project.root,
			env: { ...env, WRANGLER_LOG_PATH: path.join(outdir, ".logs") },
			timeoutMs: 5 * 60_000,
		});
		if (result.failed) {
			const output = stripVTControlCharacters(result.stderr || result.stdout);
			return { error: output.trim().split("\n").slice(-10).join("\n") };
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

/** `build`: `opennextjs-cloudflare build`, then the upload size against the budget. */
export const buildStep = defineStep<BuildArgs>({
	name: "build",
	async run(ctx, { project, force }) {
		const started = performance.now();
		const version = readGitSha(project.root, ctx.env) ?? "dev";
		const inputsHash = hashBuildInputs(project.root, version);
		const previous = readBuildStamp(project.root);
		const budget = project.settings.build.budgetGzipKiB;
		if (
			!force &&
			previous?.inputsHash === inputsHash &&
			existsSync(path.join(project.root, BUILD_DIR, "worker.js"))
		) {
			const findings = judgeBundleSize(previous.upload.gzipBytes, budget);
			return makeStepResult("build", started, {
				ok: !findings.some((f) => f.severity === "error"),
				summary: `up to date (inputs unchanged since ${previous.builtAt}); upload ${kib(previous.upload.rawBytes)} raw, ${kib(previous.upload.gzipBytes)} gzip`,
				findings,
				data: { cached: true, ...previous },
			});
		}
		const isOpenNext = readdirSync(project.root).some((f) =>
			/^open-next\.config\.(ts|js|mjs|cjs)$/.test(f),
		);
		if (!isOpenNext && !project.wrangler.main) {
			return makeStepResult("build", started, {
				ok: true,
				skipped: true,
				summary: "nothing to build: no open-next.config and no `main` in the wrangler config",
				findings: [],
			});
		}
		const opennext = isOpenNext ? localBin(project.root, "opennextjs-cloudflare") : undefined;
		if (isOpenNext && !opennext) {
			return makeStepResult("build", started, {
				ok: false,
				summary: "@opennextjs/cloudflare is not installed",
				findings: [
					{
						code: "BUILD_TOOL_MISSING",
						severity: "error",
						message:
							"no node_modules/.bin/opennextjs-cloudflare in the project; run `npm install` (the project needs @opennextjs/cloudflare).",
					},
				],
			});
		}
		if (opennext) {
			ctx.progress("opennextjs-cloudflare build");
			const result = await runTool({
				file: opennext,
				args: ["build"],
				cwd: project.root,
				env: { ...ctx.env, NEXT_TELEMETRY_DISABLED: "1", WORKERS_PIPELINE_VERSION: version },
				signal: ctx.signal,
			});
			if (result.failed || !existsSync(path.join(project.root, BUILD_DIR, "worker.js"))) {
				return makeStepResult("build", started, {
					ok: false,
					summary: `opennextjs-cloudflare build failed (exit ${result.exitCode ?? result.signal})`,
					findings: [
						{
							code: "BUILD_FAILED",
							severity: "error",
							message: (result.stdout + result.stderr).trimEnd().split("\n").slice(-40).join("\n"),
						},
					],
				});
			}
		}
		ctx.progress("measuring the upload (wrangler deploy --dry-run)");
		const upload = await measureUpload(project, ctx.env);
		if ("error" in upload) {
			return makeStepResult("build", started, {
				ok: false,
				summary: "wrangler could not bundle the build",
				findings: [
					{ code: "BUNDLE_FAILED", severity: "error", message: upload.error ?? "unknown error" },
				],
			});
		}
		const stamp: BuildStamp = { version, inputsHash, builtAt: new Date().toISOString(), upload };
		mkdirSync(path.join(project.root, BUILD_DIR), { recursive: true });
		writeFileSync(path.join(project.root, BUILD_STAMP), `${JSON.stringify(stamp, null, 2)}\n`);
		const findings = judgeBundleSize(upload.gzipBytes, budget);
		const entry = path.join(project.root, BUILD_DIR, "worker.js");
		const workerBytes = existsSync(entry) ? statSync(entry).size : undefined;
		return makeStepResult("build", started, {
			ok: !findings.some((f) => f.severity === "error"),
			summary: `built ${version.slice(0, 12)}${opennext ? ` into ${BUILD_DIR}/` : " (wrangler bundle)"}; upload ${kib(upload.rawBytes)} raw, ${kib(upload.gzipBytes)} gzip (budget ${budget} KiB; limits 3 MiB free, 10 MiB paid)`,
			findings,
			data: { cached: false, ...stamp, workerEntryBytes: workerBytes },
		});
	},
});
