import { existsSync } from "node:fs";
import path from "node:path";
import { resolveEnvironment } from "../config/load.ts";
import type { D1Database, ProjectConfig } from "../config/schema.ts";
import { readCheckedCatalog } from "../migrations/check.ts";
import { localBin, runTool } from "../process.ts";
import type { TypeScriptCode } from "../report/codes.ts";
import { type Finding, hasErrors } from "../report/model.ts";
import { defineStep, makeStepResult } from "./_step.ts";

export interface LintArgs {
	project: ProjectConfig;
	/** tsc keeps its incremental build info here; undefined checks from scratch. */
	cacheDir?: string;
}

/** Every distinct migrations set the project's environments use (bindings are per environment). */
export function distinctDatabases(project: ProjectConfig): D1Database[] {
	const seen = new Map<string, D1Database>();
	for (const env of [undefined, ...project.environments]) {
		for (const db of resolveEnvironment(project, env).databases) {
			const key = `${db.migrationsPattern}\0${db.migrationsTable}`;
			if (!seen.has(key)) seen.set(key, db);
		}
	}
	return [...seen.values()];
}

const tail = (text: string, lines = 40) => text.trimEnd().split("\n").slice(-lines).join("\n");

export const lintStep = defineStep<LintArgs>({
	name: "lint",
	async run(ctx, { project, cacheDir }) {
		const started = performance.now();
		const findings: Finding[] = [];
		const parts: string[] = [];
		const databases = distinctDatabases(project);
		let files = 0;
		for (const database of databases) {
			const checked = readCheckedCatalog(project, database);
			files += checked.catalog.migrations.length;
			findings.push(...checked.findings);
		}
		parts.push(`D1 lint: ${files} migration(s) in ${databases.length} set(s)`);

		const tools: Promise<void>[] = [];
		const biome = project.settings.lint.biome ? localBin(project.root, "biome") : undefined;
		if (biome) {
			ctx.progress("biome check");
			tools.push(
				runTool({
					file: biome,
					args: ["check", "--colors=off", "."],
					cwd: project.root,
					env: ctx.env,
					signal: ctx.signal,
				}).then((result) => {
					parts.push(`biome ${result.failed ? "failed" : "ok"}`);
					if (result.failed) {
						findings.push({
							code: "BIOME",
							severity: "error",
							message: `biome check failed (run \`npx biome check --write .\` to fix what it can):\n${tail(result.stdout + result.stderr)}`,
						});
					}
				}),
			);
		} else if (project.settings.lint.biome) {
			parts.push("biome not installed (skipped)");
		}
		const tsc = project.settings.lint.typecheck ? localBin(project.root, "tsc") : undefined;
		if (tsc && existsSync(path.join(project.root, "tsconfig.json"))) {
			ctx.progress("tsc --noEmit");
			tools.push(
				runTool({
					file: tsc,
					cwd: project.root,
					env: ctx.env,
					signal: ctx.signal,
					args: [
						"--noEmit",
						"-p",
						"tsconfig.json",
						"--pretty",
						"false",
						...(cacheDir
							? ["--incremental", "--tsBuildInfoFile", path.join(cacheDir, "tsconfig.tsbuildinfo")]
							: []),
					],
				}).then((result) => {
					parts.push(`typecheck ${result.failed ? "failed" : "ok"}`);
					if (result.failed) {
						for (const line of (result.stdout + result.stderr).split("\n")) {
							const m = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line);
							if (m) {
								findings.push({
									code: m[4] as TypeScriptCode,
									severity: "error",
									file: m[1],
									line: Number(m[2]),
									column: Number(m[3]),
									message: m[5] as string,
								});
							}
						}
						if (!findings.some((f) => f.code.startsWith("TS"))) {
							findings.push({
								code: "TYPECHECK",
								severity: "error",
								message: tail(result.stdout + result.stderr),
							});
						}
					}
				}),
			);
		}
		await Promise.all(tools);
		return makeStepResult("lint", started, {
			ok: !hasErrors(findings),
			summary: parts.join("; "),
			findings,
		});
	},
});
