// Where a package inside a workspace (a monorepo's app) finds its workspace: a leaf module, so
// the process helpers and the toolchain share it.
import { existsSync, readFileSync } from "node:fs";
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
 * node_modules/.bin of `root`, then of each directory up to its workspace root (where a workspace
 * hoists its tools, and where `npm run` looks too); only `root`'s outside a workspace.
 */
export function projectBinDirs(root: string): string[] {
	const start = path.resolve(root);
	const top = findWorkspaceRoot(start);
	const dirs = [path.join(start, "node_modules", ".bin")];
	if (!top) return dirs;
	for (let dir = path.dirname(start); ; dir = path.dirname(dir)) {
		dirs.push(path.join(dir, "node_modules", ".bin"));
		if (dir === top || path.dirname(dir) === dir) return dirs;
	}
}
