import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { UserError } from "../errors.ts";
import { runTool } from "../process.ts";
import type { StepResult } from "../report/model.ts";
import { listWorkspaceMembers } from "../workspace.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import {
	explainScriptFailure,
	installCommand,
	type PackageManager,
	readPackageJson,
	readPackageManager,
	scriptCommand,
} from "./_toolchain.ts";

export interface InstallArgs {
	/** The project directory: its package.json and lockfile (no wrangler config needed). */
	root: string;
	/**
	 * "all" (default): as the manager runs them. "deps": the dependencies' install scripts only;
	 * the project's own lifecycle scripts are held back (an install that sees only manifests and
	 * lockfiles: `prisma generate`, `nuxt prepare` need the sources). "project": only those
	 * held-back scripts, once the sources are in place.
	 */
	scripts?: InstallScripts;
}

export type InstallScripts = "all" | "deps" | "project";
export const INSTALL_SCRIPTS: readonly InstallScripts[] = ["all", "deps", "project"];

// The project's own scripts a frozen install runs, in npm's order (npm docs, scripts.md
// "npm ci": preinstall, install, postinstall, prepublish, preprepare, prepare, postprepare).
export const LIFECYCLE_SCRIPTS = [
	"preinstall",
	"install",
	"postinstall",
	"prepublish",
	"preprepare",
	"prepare",
	"postprepare",
] as const;

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
	async run(ctx, args) {
		const { root } = args;
		const started = performance.now();
		if (!existsSync(path.join(root, "package.json"))) {
			throw new UserError(
				`No package.json in ${root}: install reads the project's package.json and lockfile. Pass --cwd <app dir>.`,
				"E_CONFIG_MISSING",
			);
		}
		const pm = readPackageManager(root);
		const scripts = args.scripts ?? "all";
		// A workspace's lockfile lives at its root: the install runs there, as the manager expects.
		const cwd = pm.workspaceRoot ?? root;
		// Whose lifecycle scripts an install runs: every workspace member's, then the root's.
		// Listed only when asked for: a successful default install never needs them.
		const owners = () => [...new Set([...listWorkspaceMembers(cwd), root, cwd])];
		if (scripts === "project") return runProjectScripts(ctx, { pm, owners: owners(), started });
		const [file, ...installArgs] = installCommand(pm, ctx.env.PATH);
		const command = [file, ...installArgs];
		const data = installData(pm, command);
		ctx.progress(`installing with ${command.join(" ")} (${describeChoice(pm)})`);
		const restore = scripts === "deps" ? holdBackLifecycleScripts(owners()) : () => {};
		const result = await runTool({
			file,
			args: installArgs,
			cwd,
			env: ctx.env,
			signal: ctx.signal,
			timeoutMs: INSTALL_TIMEOUT_MS,
		}).finally(restore);
		const summary = `${command.join(" ")}: ${result.failed ? `failed (exit ${result.exitCode ?? result.signal})` : "ok"} (${describeChoice(pm)})`;
		if (!result.failed)
			return makeStepResult("install", started, { ok: true, summary, findings: [], data });
		const output = result.stdout + result.stderr;
		const why = explainScriptFailure({ argv: command as [string, ...string[]], output, pm });
		const exit = result.timedOut ? "a timeout" : (result.exitCode ?? result.signal);
		const script = scripts === "all" ? failedLifecycleScript(owners(), output) : undefined;
		const advice = script
			? `the project's ${script.name} script (${script.command}) failed. If it reads files the install cannot see (an install from the manifests and lockfile alone), install with --scripts deps, then --scripts project once the sources are in.`
			: `A frozen install fails when package.json and ${pm.lockfile ?? "the lockfile"} disagree: run the install locally and commit the lockfile.`;
		return makeStepResult("install", started, {
			ok: false,
			summary,
			findings: [
				{
					code: "INSTALL_FAILED",
					severity: "error",
					message: `${command.join(" ")} exited with ${exit} in ${cwd}${why ? ` (${why})` : ""}: ${advice}\n${excerpt(output)}`,
				},
			],
			data,
		});
	},
});

/** The install report's data: the manager, what decided it, the command run. Pure. */
const installData = (pm: PackageManager, command: string[]): InstallData => ({
	packageManager: pm.name,
	version: pm.version,
	source: pm.source,
	lockfile: pm.lockfile,
	command,
});

/**
 * Takes the project's lifecycle scripts out of its package.json files for the install (no manager
 * has a flag for that: --ignore-scripts skips the dependencies' too, and a native module needs
 * its own); the returned function puts each file back byte for byte.
 */
function holdBackLifecycleScripts(dirs: readonly string[]): () => void {
	const originals: [file: string, text: string][] = [];
	const restore = () => {
		process.off("exit", restore);
		for (const [file, text] of originals.splice(0)) writeFileSync(file, text);
	};
	// An interrupted run (exit 130) puts them back too; only SIGKILL could leave one rewritten.
	process.on("exit", restore);
	try {
		for (const dir of dirs) {
			const file = path.join(dir, "package.json");
			const text = readFileSync(file, "utf8");
			// npm reads a manifest with a byte-order mark; JSON.parse does not.
			const pkg = JSON.parse(text.replace(/^\uFEFF/, "")) as { scripts?: Record<string, string> };
			const held = LIFECYCLE_SCRIPTS.filter((name) => pkg.scripts?.[name] !== undefined);
			if (held.length === 0 || pkg.scripts === undefined) continue;
			for (const name of held) delete pkg.scripts[name];
			originals.push([file, text]);
			writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
		}
	} catch (error) {
		restore();
		throw new UserError(
			`Could not hold back the project's lifecycle scripts: ${(error as Error).message}. Fix the package.json it names, or install with --scripts all.`,
			"E_CONFIG_INVALID",
		);
	}
	return restore;
}

/**
 * The project's own lifecycle script an install's output shows running (npm echoes `> name` and
 * the command, pnpm `name$ command`): the last one, where the manager stopped.
 */
function failedLifecycleScript(
	dirs: readonly string[],
	output: string,
): { name: string; command: string } | undefined {
	let found: { name: string; command: string; at: number } | undefined;
	for (const dir of dirs) {
		const scripts = readPackageJson(dir)?.scripts ?? {};
		for (const name of LIFECYCLE_SCRIPTS) {
			const command = scripts[name];
			const at = command === undefined ? -1 : output.lastIndexOf(command);
			if (command !== undefined && at >= 0 && (found === undefined || at > found.at))
				found = { name, command, at };
		}
	}
	return found && { name: found.name, command: found.command };
}

/** The lifecycle scripts a `--scripts deps` install held back, each as `<pm> run <name>`. */
async function runProjectScripts(
	ctx: StepContext,
	{ pm, owners, started }: { pm: PackageManager; owners: readonly string[]; started: number },
): Promise<StepResult<InstallData>> {
	const ran: string[] = [];
	for (const dir of owners) {
		const pkg = readPackageJson(dir) ?? {};
		for (const name of LIFECYCLE_SCRIPTS.filter((n) => pkg.scripts?.[n] !== undefined)) {
			const [file, ...rest] = scriptCommand(pm, name, ctx.env.PATH);
			const command = [file, ...rest];
			ctx.progress(`running the project's ${name} script: ${command.join(" ")} in ${dir}`);
			const result = await runTool({
				file,
				args: rest,
				cwd: dir,
				env: ctx.env,
				signal: ctx.signal,
				timeoutMs: INSTALL_TIMEOUT_MS,
			});
			if (result.failed) {
				const output = result.stdout + result.stderr;
				return makeStepResult("install", started, {
					ok: false,
					summary: `${command.join(" ")}: failed (exit ${result.exitCode ?? result.signal})`,
					findings: [
						{
							code: "INSTALL_FAILED",
							severity: "error",
							message: `the project's ${name} script (${pkg.scripts?.[name]}) exited with ${result.timedOut ? "a timeout" : (result.exitCode ?? result.signal)} in ${dir}.\n${excerpt(output)}`,
						},
					],
					data: installData(pm, command),
				});
			}
			ran.push(name);
		}
	}
	const summary =
		ran.length > 0
			? `the project's ${ran.join(", ")} script(s): ok`
			: "the project has no lifecycle scripts to run";
	return makeStepResult("install", started, {
		ok: true,
		summary,
		findings: [],
		data: installData(pm, []),
	});
}

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
