import { closeSync, existsSync, openSync, readFileSync, readSync } from "node:fs";
import path from "node:path";
import { UserError } from "../errors.ts";
import { findWorkspaceRoot } from "../workspace.ts";

export { findWorkspaceRoot };

export type PackageManagerName = "npm" | "pnpm" | "yarn" | "bun";

export interface PackageManager {
	name: PackageManagerName;
	/** From `packageManager` (`pnpm@9.15.0`), when the project pins one. */
	version: string | undefined;
	/** What decided it, for messages. */
	source: "packageManager" | "lockfile" | "default";
	lockfile: string | undefined;
	/** yarn 2+ (berry): not published as `yarn` on npm, and spells a frozen install `--immutable`. */
	berry?: boolean;
	/** Berry's checked-in release (`yarnPath` in .yarnrc.yml), absolute once read from disk. */
	yarnPath?: string;
	/** The workspace root the manager was read from, when the project is a package inside one. */
	workspaceRoot?: string;
}

/** The parts of package.json the pipeline reads. */
export interface PackageJson {
	name?: string;
	packageManager?: string;
	scripts?: Record<string, string>;
	dependencies?: Record<string, string>;
	devDependencies?: Record<string, string>;
}

// Lockfiles by manager, in the order a tie is broken (a repo with two keeps the first).
export const LOCKFILES: readonly [string, PackageManagerName][] = [
	["pnpm-lock.yaml", "pnpm"],
	["yarn.lock", "yarn"],
	["bun.lock", "bun"],
	["bun.lockb", "bun"],
	["package-lock.json", "npm"],
	["npm-shrinkwrap.json", "npm"],
];

const MANAGERS = new Set<string>(["npm", "pnpm", "yarn", "bun"]);

/** corepack's rule first (`packageManager`), then the lockfile, then npm. Pure. */
export function detectPackageManager({
	packageJson,
	files,
	yarnrc,
}: {
	packageJson: PackageJson | undefined;
	/** Names of the files in the project root. */
	files: readonly string[];
	/** The text of .yarnrc.yml, when there is one (only yarn berry reads that file). */
	yarnrc?: string;
}): PackageManager {
	const lock = LOCKFILES.find(([file]) => files.includes(file));
	const pinned = /^(npm|pnpm|yarn|bun)@([^+\s]+)/.exec(packageJson?.packageManager ?? "");
	let pm: PackageManager;
	if (pinned && MANAGERS.has(pinned[1] as string)) {
		const name = pinned[1] as PackageManagerName;
		const lockfile = LOCKFILES.find(([file, pm]) => pm === name && files.includes(file))?.[0];
		pm = { name, version: pinned[2], source: "packageManager", lockfile };
	} else if (lock) {
		pm = { name: lock[1], version: undefined, source: "lockfile", lockfile: lock[0] };
	} else {
		pm = { name: "npm", version: undefined, source: "default", lockfile: undefined };
	}
	if (pm.name !== "yarn") return pm;
	const major = Number(pm.version?.split(".")[0]);
	const berry = major >= 2 || (pm.version === undefined && yarnrc !== undefined);
	const yarnPath = /^yarnPath:\s*["']?([^"'\n#]+?)["']?\s*(?:#.*)?$/m.exec(yarnrc ?? "")?.[1];
	return { ...pm, berry, ...(berry && yarnPath ? { yarnPath } : {}) };
}

/**
 * The package.json at `root`; undefined when there is none. One that is not valid JSON is an error
 * (npm, pnpm and yarn refuse it too): read as "no scripts", `test` would pass as skipped.
 */
export function readPackageJson(root: string): PackageJson | undefined {
	const file = path.join(root, "package.json");
	let text: string;
	try {
		text = readFileSync(file, "utf8");
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
		throw new UserError(`${file} cannot be read: ${(error as Error).message}`, "E_CONFIG_INVALID");
	}
	let parsed: unknown;
	try {
		// A byte order mark is allowed: npm strips it (json-parse-even-better-errors).
		parsed = JSON.parse(text.replace(/^\uFEFF/, ""));
	} catch (error) {
		throw new UserError(
			`${file} is not valid JSON: ${(error as Error).message}. Fix it (npm, pnpm and yarn refuse it too).`,
			"E_CONFIG_INVALID",
		);
	}
	if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
		throw new UserError(
			`${file}: expected a JSON object, found ${Array.isArray(parsed) ? "an array" : parsed === null ? "null" : typeof parsed}.`,
			"E_CONFIG_INVALID",
		);
	}
	return parsed as PackageJson;
}

function readPackageManagerIn(dir: string): PackageManager {
	const files = LOCKFILES.map(([file]) => file).filter((file) => existsSync(path.join(dir, file)));
	let yarnrc: string | undefined;
	try {
		yarnrc = readFileSync(path.join(dir, ".yarnrc.yml"), "utf8");
	} catch {
		// No .yarnrc.yml: not yarn berry, or berry with its defaults.
	}
	const pm = detectPackageManager({ packageJson: readPackageJson(dir), files, yarnrc });
	return pm.yarnPath ? { ...pm, yarnPath: path.resolve(dir, pm.yarnPath) } : pm;
}

/** The project's manager; for a package inside a workspace without its own, the workspace's. */
export function readPackageManager(root: string): PackageManager {
	const own = readPackageManagerIn(root);
	if (own.lockfile) return own;
	const workspaceRoot = findWorkspaceRoot(root);
	if (!workspaceRoot) return own;
	const outer = readPackageManagerIn(workspaceRoot);
	// An app that pins its manager keeps it; the lockfile is the workspace's when it is that manager's.
	if (own.source === "packageManager")
		return outer.name === own.name ? { ...own, lockfile: outer.lockfile, workspaceRoot } : own;
	return { ...outer, workspaceRoot };
}

/** Whether an executable is on PATH (no shell, no `which`). */
export function onPath(name: string, envPath: string | undefined): boolean {
	return (envPath ?? "")
		.split(path.delimiter)
		.filter(Boolean)
		.some((dir) => existsSync(path.join(dir, name)));
}

/**
 * The command that runs the package manager: its binary when on PATH, else the pinned (or
 * current) version from the npm registry through npx, which works where corepack cannot verify
 * signatures (a registry mirror) or is absent (Node 25).
 */
export function packageManagerCommand(
	pm: PackageManager,
	envPath: string | undefined,
): [string, ...string[]] {
	if (pm.name === "npm" || onPath(pm.name, envPath)) return [pm.name];
	// Berry's own release, checked in; any yarn on PATH would hand over to it too.
	if (pm.yarnPath && existsSync(pm.yarnPath)) return ["node", pm.yarnPath];
	// yarn 2+ is published as @yarnpkg/cli-dist (the `yarn` package stops at 1.x).
	if (pm.berry)
		return ["npx", "--yes", "--package", `@yarnpkg/cli-dist@${pm.version ?? "latest"}`, "yarn"];
	return ["npx", "--yes", `${pm.name}@${pm.version ?? "latest"}`];
}

/** `<pm> run <script>` for any manager (all four accept `run`). */
export function scriptCommand(
	pm: PackageManager,
	script: string,
	envPath: string | undefined,
): [string, ...string[]] {
	return [...packageManagerCommand(pm, envPath), "run", script];
}

/** A reproducible install from the lockfile, as each manager spells it. */
export function installCommand(
	pm: PackageManager,
	envPath: string | undefined,
): [string, ...string[]] {
	const base = packageManagerCommand(pm, envPath);
	if (pm.name === "npm") return pm.lockfile ? ["npm", "ci"] : ["npm", "install"];
	if (pm.name === "pnpm")
		return [...base, "install", ...(pm.lockfile ? ["--frozen-lockfile"] : [])];
	if (pm.name === "yarn") {
		const frozen = pm.berry ? "--immutable" : "--frozen-lockfile";
		return [...base, "install", ...(pm.lockfile ? [frozen] : [])];
	}
	return [...base, "install", ...(pm.lockfile ? ["--frozen-lockfile"] : [])];
}

/**
 * What to do when a script the project runs failed for a reason that is not its own check: a tool
 * it calls is not installed (sh exit 127), or the manager could not be fetched through npx. Pure.
 */
export function explainScriptFailure({
	argv,
	output,
	pm,
}: {
	argv: readonly string[];
	output: string;
	pm: PackageManager;
}): string | undefined {
	const fetched = argv[0] === "npx" && argv[1] === "--yes" && argv[2] !== undefined;
	if (
		fetched &&
		/\b(ETARGET|E404|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH)\b/.test(output)
	) {
		const fetch = argv.slice(0, argv.indexOf("run") > 0 ? argv.indexOf("run") : 3).join(" ");
		return `${pm.name} is not on PATH and \`${fetch}\` could not fetch it: install ${pm.name}${pm.version ? ` ${pm.version}` : ""} (\`corepack enable\`, or \`npm i -g ${pm.berry ? "@yarnpkg/cli-dist" : pm.name}\`) and run again`;
	}
	// sh: `sh: 1: eslint: not found`; bash: `eslint: command not found`; yarn berry: `command not found: eslint`; pnpm exec: `Command "eslint" not found`.
	const missing =
		/(?:^|\n)\S*sh: (?:\d+: |line \d+: )?([^\s:]+): (?:command )?not found/.exec(output) ??
		/(?:^|\n)([^\s:'"]+): command not found/.exec(output) ??
		/command not found: ([^\s'"]+)/.exec(output) ??
		/Command "([^"]+)" not found/.exec(output);
	if (!missing) return undefined;
	const tool = missing[1] as string;
	return `\`${tool}\` is not installed: the script runs it, but neither node_modules/.bin nor PATH has it. Install the dependencies first (\`${pm.name === "npm" ? (pm.lockfile ? "npm ci" : "npm install") : `${pm.name} install`}\`${pm.workspaceRoot ? ` in ${pm.workspaceRoot}` : ""}), or add ${tool} to devDependencies`;
}

export type Framework = "next" | "hono" | "vite" | "remix" | "astro" | "worker";

/** The app's framework from its dependencies; OpenNext is Next built for Workers. Pure. */
export function detectFramework(pkg: PackageJson | undefined): Framework {
	const deps = { ...pkg?.dependencies, ...pkg?.devDependencies };
	if (deps.next) return "next";
	// React Router 7 on the Cloudflare Vite plugin has no Cloudflare package of its own.
	if (
		deps["@remix-run/cloudflare"] ||
		deps["@react-router/cloudflare"] ||
		deps["@react-router/dev"] ||
		deps["@remix-run/dev"]
	)
		return "remix";
	if (deps.astro) return "astro";
	if (deps.vite || deps.vinext) return "vite";
	if (deps.hono) return "hono";
	return "worker";
}

/** A command segment (between `&&`, `||`, `;`) that runs `wrangler types`: its words after `types`. */
function wranglerTypesArgs(segment: string): string[] | undefined {
	const words = segment.trim().split(/\s+/);
	const at = words.findIndex((w, i) => w === "types" && /(^|\/)wrangler$/.test(words[i - 1] ?? ""));
	return at === -1 ? undefined : words.slice(at + 1);
}

const segmentsOf = (command: string) => command.split(/&&|\|\||;/);

/** Whether the script writes the Env types (`wrangler types`, not `--check`, which only compares). */
const generatesTypes = (segment: string) => {
	const args = wranglerTypesArgs(segment);
	return args !== undefined && !args.includes("--check");
};

/**
 * The package script that writes the Env types: `cf-typegen`, else one that does only that
 * (SvelteKit's `gen`) before one that also does more (`wrangler types && vite build`), which `onlyTypes` refuses.
 */
export function typegenScript(
	scripts: Record<string, unknown> = {},
	{ onlyTypes = false }: { onlyTypes?: boolean } = {},
): string | undefined {
	// Cloudflare's templates name it cf-typegen: that name counts whatever it runs.
	if (typeof scripts["cf-typegen"] === "string") return "cf-typegen";
	const candidates = Object.entries(scripts).filter(
		(entry): entry is [string, string] =>
			typeof entry[1] === "string" && segmentsOf(entry[1]).some(generatesTypes),
	);
	const only = candidates.find(([, command]) => segmentsOf(command).every(generatesTypes));
	return (only ?? (onlyTypes ? undefined : candidates[0]))?.[0];
}

/**
 * The committed files `wrangler types` wrote (its header says so), with their first 64 KiB (the
 * Env and GlobalProps come before the runtime types): worker-configuration.d.ts, or the path one
 * of the package `scripts` passes it.
 */
export function committedWranglerTypes(
	root: string,
	scripts: Record<string, unknown> = {},
): { file: string; head: string }[] {
	const files = new Set(["worker-configuration.d.ts"]);
	for (const command of Object.values(scripts)) {
		if (typeof command !== "string") continue;
		for (const segment of segmentsOf(command)) {
			const file = wranglerTypesArgs(segment)?.find(
				(w) => !w.startsWith("-") && w.endsWith(".d.ts"),
			);
			if (file) files.add(file);
		}
	}
	return [...files].flatMap((file) => {
		const head = readHead(path.resolve(root, file));
		return head?.includes("Generated by Wrangler") ? [{ file, head }] : [];
	});
}

function readHead(file: string): string | undefined {
	let fd: number | undefined;
	try {
		fd = openSync(file, "r");
		const buffer = Buffer.alloc(64 * 1024);
		return buffer.toString("utf8", 0, readSync(fd, buffer, 0, buffer.length, 0));
	} catch {
		return undefined;
	} finally {
		if (fd !== undefined) closeSync(fd);
	}
}

// The Cloudflare Vite plugin's rule (its maybeResolveMain): a `main` ending in one of these is a
// file beside the wrangler config; any other is a module id Vite resolves (a package export such
// as TanStack Start's `@tanstack/react-start/server-entry`, a virtual module), never a path.
const VITE_ENTRY_EXTENSIONS = [".js", ".mjs", ".ts", ".mts", ".jsx", ".tsx"];

/**
 * Whether the app's `main` is a module id its Cloudflare Vite plugin resolves, not a file. The
 * plugin is the app's own dependency, or comes with its adapter (@astrojs/cloudflare 13+):
 * installed in its node_modules, or its workspace root's.
 */
export function mainIsModuleId(root: string, main: string | undefined): boolean {
	if (main === undefined || VITE_ENTRY_EXTENSIONS.some((ext) => main.endsWith(ext))) return false;
	const pkg = readPackageJson(root);
	if ({ ...pkg?.dependencies, ...pkg?.devDependencies }["@cloudflare/vite-plugin"]) return true;
	const plugin = "node_modules/@cloudflare/vite-plugin/package.json";
	return [root, findWorkspaceRoot(root)].some(
		(dir) => dir !== undefined && existsSync(path.join(dir, plugin)),
	);
}
