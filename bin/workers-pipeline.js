#!/usr/bin/env node
// Entry point: makes sure a Node >= 22 runs the CLI, then runs the compiled CLI in dist/. In a
// source checkout whose dist/ is missing or older than ci/, the TypeScript runs through tsx
// (a devDependency), so an edit is never tested against a stale build.
import { existsSync, readdirSync, statSync } from "node:fs";
// A namespace import: Node 20 has no enableCompileCache, and a named import would fail to link
// before the version check below could say what to do.
import * as nodeModule from "node:module";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
	const node24 = fileURLToPath(new URL("../.tools/node/bin/node", import.meta.url));
	if (existsSync(node24)) {
		// Tools the CLI starts (`#!/usr/bin/env node`) must get this Node too.
		const env = { ...process.env, PATH: `${dirname(node24)}${delimiter}${process.env.PATH ?? ""}` };
		// Loaded only here: child_process (and the net/stream modules it pulls in) costs every start-up.
		const { spawnSync } = await import("node:child_process");
		const child = spawnSync(node24, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
			stdio: "inherit",
			env,
		});
		process.exit(child.status ?? 1);
	}
	process.stderr.write(
		`workers-pipeline needs Node >= 22 (this is ${process.version}). Install Node 24, or run \`npm run setup\` in a workers-pipeline checkout (it fetches Node 24 from the npm registry).\n`,
	);
	process.exit(2);
}

// V8's code cache on disk (Node >= 22.1): later runs skip compiling zod, the steps, wrangler's
// client code. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
nodeModule.enableCompileCache?.();

const root = fileURLToPath(new URL("..", import.meta.url));
const sources = join(root, "ci");

// Every start in a checkout pays this walk: a template string, not path.join (whose normalising
// costs more than the stats while the code is cold); fs takes `/` on Windows too.
function newestSource(dir) {
	let newest = 0;
	for (const entry of readdirSync(dir, { withFileTypes: true })) {
		const full = `${dir}/${entry.name}`;
		const mtime = entry.isDirectory() ? newestSource(full) : statSync(full).mtimeMs;
		if (mtime > newest) newest = mtime;
	}
	return newest;
}

// The published package has dist/ and no ci/: the first test is all it ever pays.
function distIsCurrent() {
	if (!existsSync(sources)) return true;
	const stamp = join(root, "dist", ".build-stamp");
	return existsSync(stamp) && statSync(stamp).mtimeMs >= newestSource(sources);
}

if (distIsCurrent()) {
	const { runMain } = await import("../dist/ci/cli/main.js");
	await runMain();
} else {
	const { register } = await import("tsx/esm/api");
	register();
	const { runMain } = await import("../ci/cli/main.ts");
	await runMain();
}
