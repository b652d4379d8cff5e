import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import path from "node:path";
import { listProjectFiles } from "../git.ts";
import { findPnpRuntime } from "../pnp.ts";
import { listWorkspaceMembers } from "../workspace.ts";
import { findWorkspaceRoot, LOCKFILES, readPackageJson } from "./_toolchain.ts";

// The workspace's own files a package's install and build depend on.
const WORKSPACE_FILES = ["package.json", "pnpm-workspace.yaml", ".npmrc", ".yarnrc.yml"];

/**
 * For a package inside a workspace (a monorepo's app), what outside it its build and tests depend
 * on, relative to `root`: the workspace's manifest, lockfile and settings, and every file of each
 * workspace package it depends on (followed through node_modules links, as its bundler does).
 */
export function listWorkspaceInputs(root: string): string[] {
	const top = findWorkspaceRoot(root);
	if (!top) return [];
	const rel = (abs: string) => path.relative(root, abs).replaceAll(path.sep, "/");
	const inputs = [...WORKSPACE_FILES, ...LOCKFILES.map(([file]) => file)]
		.map((file) => path.join(top, file))
		.filter((file) => existsSync(file))
		.map(rel);
	const seen = new Set([realpathSync(root)]);
	// Yarn PnP links no node_modules: a dependency named as a workspace member is that member (it
	// may count one a registry install would have served: a cache miss, never a stale build).
	let members: Map<string, string> | undefined;
	const member = (name: string) => {
		members ??= new Map(
			listWorkspaceMembers(top).map(
				(dir) => [readPackageJson(dir)?.name ?? "", realpathSync(dir)] as const,
			),
		);
		return members.get(name);
	};
	const pnp = findPnpRuntime(root) !== undefined;
	const visit = (dir: string) => {
		const pkg = readPackageJson(dir);
		for (const name of Object.keys({ ...pkg?.dependencies, ...pkg?.devDependencies })) {
			const linked = findLinkedPackage(dir, top, name) ?? (pnp ? member(name) : undefined);
			if (!linked || seen.has(linked)) continue;
			seen.add(linked);
			inputs.push(...listProjectFiles(linked).map((file) => rel(path.join(linked, file))));
			visit(linked);
		}
	};
	visit(root);
	return [...new Set(inputs)].sort();
}

/** A dependency's directory when it is a workspace package (linked from inside `top`), not an install. */
function findLinkedPackage(from: string, top: string, name: string): string | undefined {
	for (let dir = from; ; dir = path.dirname(dir)) {
		const candidate = path.join(dir, "node_modules", name);
		if (existsSync(candidate)) {
			const real = realpathSync(candidate);
			const inside = !path.relative(top, real).startsWith("..");
			return inside && !real.split(path.sep).includes("node_modules") ? real : undefined;
		}
		if (dir === top || path.dirname(dir) === dir) return undefined;
	}
}

/** sha256 over every project file's path and bytes (a deleted file counts as a change). */
export function hashProjectFiles(root: string, extra = ""): string {
	const hash = createHash("sha256").update(extra);
	for (const file of [...listProjectFiles(root), ...listWorkspaceInputs(root)]) {
		hash.update(`\n${file}\n`);
		try {
			hash.update(readFileSync(path.join(root, file)));
		} catch {
			hash.update("<missing>");
		}
	}
	return hash.digest("hex");
}

export function readCacheEntry<T>(cacheDir: string, name: string): T | undefined {
	try {
		return JSON.parse(readFileSync(path.join(cacheDir, `${name}.json`), "utf8")) as T;
	} catch {
		return undefined;
	}
}

export function writeCacheEntry(cacheDir: string, name: string, value: unknown): void {
	mkdirSync(cacheDir, { recursive: true });
	writeFileSync(path.join(cacheDir, `${name}.json`), JSON.stringify(value));
}
