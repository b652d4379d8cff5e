#!/usr/bin/env node
// Entry point: makes sure a Node >= 22 runs the CLI, then loads the TypeScript sources with tsx.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
	const node24 = fileURLToPath(new URL("../.tools/node/bin/node", import.meta.url));
	if (existsSync(node24)) {
		// Tools the CLI starts (`#!/usr/bin/env node`) must get this Node too.
		const env = { ...process.env, PATH: `${dirname(node24)}${delimiter}${process.env.PATH ?? ""}` };
		const child = spawnSync(node24, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
			stdio: "inherit",
			env,
		});
		process.exit(child.status ?? 1);
	}
	process.stderr.write(
		`workers-pipeline needs Node >= 22 (this is ${process.version}). Run \`npm run setup\` in the workers-pipeline checkout (it fetches Node 24 from the npm registry), or install Node 24.\n`,
	);
	process.exit(2);
}

const { register } = await import("tsx/esm/api");
register();
const { runMain } = await import("../ci/index.ts");
await runMain();
