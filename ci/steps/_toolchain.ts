import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

export type PackageManagerName = "npm" | "pnpm" | "yarn" | "bun";

export interface PackageManager {
	name: PackageManagerName;
	/** From `packageManager` (`pnpm@9.15.0`), when the project pins one. */
	version: string | undefined;
	/** What decided it, for messages. */
	source: "packageManager" | "lockfile" | "default";
	lockfile: string | undefined;
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
}: {
	packageJson: PackageJson | undefined;
	/** Names of the files in the project root. */
	files: readonly string[];
}): PackageManager {
	const lock = LOCKFILES.find(([file]) => files.includes(file));
	const pinned = /^(npm|pnpm|yarn|bun)@([^+\s]+)/.exec(packageJson?.packageManager ?? "");
	if (pinned && MANAGERS.has(pinned[1] as string)) {
		const name = pinned[1] as PackageManagerName;
		const lockfile = LOCKFILES.find(([file, pm]) => pm === name && files.includes(file))?.[0];
		return { name, version: pinned[2], source: "packageManager", lockfile };
	}
	if (lock) return { name: lock[1], version: undefined, source: "lockfile", lockfile: lock[0] };
	return { name: "npm", version: undefined, source: "default", lockfile: undefined };
}

export function readPackageJson(root: string): PackageJson | undefined {
	try {
		return JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as PackageJson;
	} catch {
		return undefined;
	}
}

export function readPackageManager(root: string): PackageManager {
	const files = LOCKFILES.map(([file]) => file).filter((file) => existsSync(path.join(root, file)));
	return detectPackageManager({ packageJson: readPackageJson(root), files });
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
	if (pm.name === "yarn") return [...base, "install", ...(pm.lockfile ? ["--immutable"] : [])];
	return [...base, "install", ...(pm.lockfile ? ["--frozen-lockfile"] : [])];
}

export type Framework = "next" | "hono" | "vite" | "remix" | "astro" | "worker";

/** The app's framework from its dependencies; OpenNext is Next built for Workers. Pure. */
export function detectFramework(pkg: PackageJson | undefined): Framework {
	const deps = { ...pkg?.dependencies, ...pkg?.devDependencies };
	if (deps.next) return "next";
	if (deps["@remix-run/cloudflare"] || deps["@react-router/cloudflare"]) return "remix";
	if (deps.astro) return "astro";
	if (deps.vite || deps.vinext) return "vite";
	if (deps.hono) return "hono";
	return "worker";
}
