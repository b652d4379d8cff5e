// Where a package inside a workspace (a monorepo's app) finds its workspace: a leaf module, so
// the process helpers and the toolchain share it.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/**
 * The nearest directory above `root` that declares a workspace holding it: `pnpm-workspace.yaml`,
 * or a package.json with `workspaces` (npm, yarn, bun). A monorepo's app has no lockfile of its own.
 */
export function findWorkspaceRoot(root: string): string | undefined {
	const start = path.resolve(root);
	for (let dir = path.dirname(start); ; dir = path.dirname(dir)) {
		if (existsSync(path.join(dir, "pnpm-workspace.yaml"))) return dir;
		if (declaresWorkspaces(dir)) return dir;
		if (path.dirname(dir) === dir) return undefined;
	}
}

function declaresWorkspaces(dir: string): boolean {
	try {
		const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as {
			workspaces?: unknown;
		};
		return pkg.workspaces !== undefined;
	} catch {
		return false;
	}
}

/**
 * `root`, then each directory above it up to its workspace root; only `root` outside a workspace.
 * Where Node, `npm run` and Yarn look for a package's tools and install state.
 */
export function workspaceChain(root: string): string[] {
	const start = path.resolve(root);
	const top = findWorkspaceRoot(start);
	const dirs = [start];
	if (!top) return dirs;
	for (let dir = path.dirname(start); ; dir = path.dirname(dir)) {
		dirs.push(dir);
		if (dir === top || path.dirname(dir) === dir) return dirs;
	}
}

/**
 * node_modules/.bin of `root`, then of each directory up to its workspace root (where a workspace
 * hoists its tools, and where `npm run` looks too); only `root`'s outside a workspace.
 */
export function projectBinDirs(root: string): string[] {
	return workspaceChain(root).map((dir) => path.join(dir, "node_modules", ".bin"));
}

/**
 * The member directories a workspace root declares (package.json `workspaces`, as an array or
 * `{ packages }`, or pnpm-workspace.yaml's `packages:` list), each with a package.json. Patterns
 * are expanded as workspaces write them: `dir`, `dir/*` (one level), `dir/**` (any depth); what
 * a negated one (`!dir`) matches is taken out.
 */
export function listWorkspaceMembers(top: string): string[] {
	const members = new Set<string>();
	const patterns = workspacePatterns(top);
	const expand = (pattern: string) => expandPattern(top, pattern.replace(/^!?(?:\.\/)?|\/+$/g, ""));
	for (const pattern of patterns.filter((p) => !p.startsWith("!")))
		for (const dir of expand(pattern))
			if (existsSync(path.join(dir, "package.json"))) members.add(dir);
	for (const pattern of patterns.filter((p) => p.startsWith("!")))
		for (const dir of expand(pattern)) members.delete(dir);
	members.delete(path.resolve(top));
	return [...members].sort();
}

function workspacePatterns(top: string): string[] {
	const yaml = path.join(top, "pnpm-workspace.yaml");
	if (existsSync(yaml)) {
		// The `packages:` block's `- entry` lines (pnpm's docs write it that way).
		const block = /^packages:\s*\n((?:[ \t]*(?:-.*|#.*)?\n?)*)/m.exec(readFileSync(yaml, "utf8"));
		return [
			...(block?.[1] ?? "").matchAll(/^[ \t]*-[ \t]*['"]?([^'"#\n]+?)['"]?[ \t]*(?:#.*)?$/gm),
		].map((m) => m[1] as string);
	}
	try {
		const { workspaces } = JSON.parse(readFileSync(path.join(top, "package.json"), "utf8")) as {
			workspaces?: string[] | { packages?: string[] };
		};
		const list = Array.isArray(workspaces) ? workspaces : (workspaces?.packages ?? []);
		return list.filter((p): p is string => typeof p === "string");
	} catch {
		return [];
	}
}

function expandPattern(top: string, pattern: string): string[] {
	const segments = pattern.split("/");
	let dirs = [path.resolve(top)];
	for (const segment of segments) {
		if (segment === "**") {
			dirs = dirs.flatMap((d) => [d, ...subdirsDeep(d)]);
			continue;
		}
		if (!segment.includes("*")) {
			dirs = dirs.map((d) => path.join(d, segment));
			continue;
		}
		const match = new RegExp(
			`^${segment.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`,
		);
		dirs = dirs.flatMap((d) => subdirs(d).filter((s) => match.test(path.basename(s))));
	}
	return dirs;
}

const subdirs = (dir: string): string[] => {
	try {
		return readdirSync(dir, { withFileTypes: true })
			.filter((e) => e.isDirectory() && e.name !== "node_modules" && !e.name.startsWith("."))
			.map((e) => path.join(dir, e.name));
	} catch {
		return [];
	}
};
const subdirsDeep = (dir: string): string[] => subdirs(dir).flatMap((d) => [d, ...subdirsDeep(d)]);
