#!/usr/bin/env node
// `npm run build:pkg`: compiles ci/ to JavaScript in dist/ (tsc -p tsconfig.build.json, `.ts`
// imports rewritten to `.js`) and copies ci/'s non-TypeScript files beside it. Skips the work
// when dist/ is newer than every input; `--force` rebuilds. Run by `npm run setup` and `prepack`.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const stamp = path.join(root, "dist", ".build-stamp");

// The same walk bin/workers-pipeline.js uses to decide whether dist/ is stale.
function newestInput() {
	let newest = 0;
	const visit = (dir) => {
		for (const entry of readdirSync(dir, { withFileTypes: true })) {
			const full = path.join(dir, entry.name);
			if (entry.isDirectory()) visit(full);
			else newest = Math.max(newest, statSync(full).mtimeMs);
		}
	};
	visit(path.join(root, "ci"));
	for (const file of ["tsconfig.json", "tsconfig.build.json", "package.json"]) {
		newest = Math.max(newest, statSync(path.join(root, file)).mtimeMs);
	}
	return newest;
}

const force = process.argv.includes("--force");
if (!force && existsSync(stamp) && statSync(stamp).mtimeMs >= newestInput()) process.exit(0);

rmSync(path.join(root, "dist"), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const result = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json")], {
	cwd: root,
	stdio: "inherit",
});
if (result.status !== 0) {
	console.error("workers-pipeline: the package build (tsc -p tsconfig.build.json) failed");
	process.exit(result.status ?? 1);
}
// Templates and other assets under ci/ ship beside the compiled modules that read them.
cpSync(path.join(root, "ci"), path.join(root, "dist", "ci"), {
	recursive: true,
	filter: (src) => statSync(src).isDirectory() || !src.endsWith(".ts"),
});
writeFileSync(stamp, `${new Date().toISOString()}\n`);
