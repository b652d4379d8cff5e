import { existsSync } from "node:fs";
import path from "node:path";
import { UserError } from "../errors.ts";
import { runTool } from "../process.ts";
import { defineStep, makeStepResult } from "./_step.ts";
import {
	explainScriptFailure,
	installCommand,
	type PackageManager,
	readPackageManager,
} from "./_toolchain.ts";

export interface InstallArgs {
	/** The project directory: its package.json and lockfile (no wrangler config needed). */
	root: string;
}

/** What an install report carries: the manager, what decided it, and the command run. */
export type InstallData = {
	packageManager: PackageManager["name"];
	version: string | undefined;
	source: PackageManager["source"];
	lockfile: string | undefined;
	command: string[];
};

// An install that waits on a slow registry is still progress; a hung one must end.
const INSTALL_TIMEOUT_MS = 30 * 60_000;

/**
 * Installs the project's dependencies from its lockfile with its own package manager (`npm ci`,
 * `pnpm install --frozen-lockfile`, `yarn install --immutable`, `bun install --frozen-lockfile`):
 * what the Dagger module runs before lint, test and build, so a pnpm, yarn or bun app installs
 * as it does on a laptop.
 */
export const installStep = defineStep<InstallArgs, InstallData>({
	name: "install",
	async run(ctx, { root }) {
		const started = performance.now();
		if (!existsSync(path.join(root, "package.json"))) {
			throw new UserError(
				`No package.json in ${root}: install reads the project's package.json and lockfile. Pass --cwd <app dir>.`,
				"E_CONFIG_MISSING",
			);
		}
		const pm = readPackageManager(root);
		const [file, ...args] = installCommand(pm, ctx.env.PATH);
		const command = [file, ...args];
		const data: InstallData = {
			packageManager: pm.name,
			version: pm.version,
			source: pm.source,
			lockfile: pm.lockfile,
			command,
		};
		// A workspace's lockfile lives at its root: the install runs there, as the manager expects.
		const cwd = pm.workspaceRoot ?? root;
		ctx.progress(`installing with ${command.join(" ")} (${describeChoice(pm)})`);
		const result = await runTool({
			file,
			args,
			cwd,
			env: ctx.env,
			signal: ctx.signal,
			timeoutMs: INSTALL_TIMEOUT_MS,
		});
		const summary = `${command.join(" ")}: ${result.failed ? `failed (exit ${result.exitCode ?? result.signal})` : "ok"} (${describeChoice(pm)})`;
		if (!result.failed)
			return makeStepResult("install", started, { ok: true, summary, findings: [], data });
		const output = result.stdout + result.stderr;
		const why = explainScriptFailure({ argv: command as [string, ...string[]], output, pm });
		return makeStepResult("install", started, {
			ok: false,
			summary,
			findings: [
				{
					code: "INSTALL_FAILED",
					severity: "error",
					message: `${command.join(" ")} exited with ${result.timedOut ? "a timeout" : (result.exitCode ?? result.signal)} in ${cwd}${why ? ` (${why})` : ""}. A frozen install fails when package.json and ${pm.lockfile ?? "the lockfile"} disagree: run the install locally and commit the lockfile.\n${excerpt(output)}`,
				},
			],
			data,
		});
	},
});

/**
 * The output's first and last lines: npm puts its reason at the top and its usage text after it,
 * pnpm and yarn end with theirs. Pure.
 */
export function excerpt(output: string, head = 15, tail = 25): string {
	const lines = output.trimEnd().split("\n");
	if (lines.length <= head + tail) return lines.join("\n");
	return [
		...lines.slice(0, head),
		`… (${lines.length - head - tail} lines)`,
		...lines.slice(-tail),
	].join("\n");
}

/** "pnpm 9.15.0 from packageManager", "yarn from yarn.lock", "npm (no lockfile)". Pure. */
export function describeChoice(pm: PackageManager): string {
	const name = pm.version ? `${pm.name} ${pm.version}` : pm.name;
	const where = pm.workspaceRoot ? ` of the workspace at ${pm.workspaceRoot}` : "";
	if (pm.source === "packageManager") return `${name} from packageManager${where}`;
	if (pm.source === "lockfile") return `${name} from ${pm.lockfile}${where}`;
	return `${name}, no lockfile or packageManager`;
}
