// Yarn Plug'n'Play (Yarn 2+'s default linker): no node_modules, so no node_modules/.bin. The
// project's .pnp.cjs maps every package to a zip in the Yarn cache, and Node reads those only
// with that file preloaded (`--require .pnp.cjs`, what `yarn run` puts in NODE_OPTIONS).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { workspaceChain } from "./workspace.ts";

export interface PnpRuntime {
	/** The .pnp.cjs file (at the project root or its workspace root). */
	file: string;
	/** .pnp.loader.mjs beside it, for ES modules, when Yarn wrote one. */
	loader?: string;
}

// What a node_modules install leaves (Yarn's node-modules linker, npm, pnpm): a .pnp.cjs beside
// one is stale, not the runtime its tools need.
const INSTALLED_NODE_MODULES = [
	"node_modules/.yarn-state.yml",
	"node_modules/.package-lock.json",
	"node_modules/.modules.yaml",
];

/** The .pnp.cjs of `root`, or of the workspace holding it; undefined for a node_modules install. */
export function findPnpRuntime(root: string): PnpRuntime | undefined {
	for (const dir of workspaceChain(root)) {
		const file = path.join(dir, ".pnp.cjs");
		if (existsSync(file) && !INSTALLED_NODE_MODULES.some((f) => existsSync(path.join(dir, f)))) {
			const loader = path.join(dir, ".pnp.loader.mjs");
			return existsSync(loader) ? { file, loader } : { file };
		}
	}
	return undefined;
}

/**
 * NODE_OPTIONS that load the project's PnP runtime in a child Node (kept as given when they do
 * already, as under `yarn run`), so a tool's `require` finds the packages in the zips.
 */
export function withPnpNodeOptions(runtime: PnpRuntime, current: string | undefined): string {
	const options = current ?? "";
	if (options.includes(runtime.file)) return options;
	// Quoted as Node parses NODE_OPTIONS (a path may hold spaces).
	const quote = (value: string) => `"${value.replace(/(["\\])/g, "\\$1")}"`;
	const added = [`--require ${quote(runtime.file)}`];
	if (runtime.loader)
		added.push(`--experimental-loader ${quote(pathToFileURL(runtime.loader).href)}`);
	return [options, ...added].filter(Boolean).join(" ");
}

// Run in a child Node with the runtime preloaded (its fs reads the zips): the binaries of the
// project's direct dependencies, as `yarn bin` lists them (@yarnpkg/core scriptUtils
// getPackageAccessibleBinaries: a string `bin` is named after the unscoped package name).
const LIST_BINS = `
const fs = require("fs"), path = require("path");
const api = require(process.argv[1]);
const root = process.argv[2];
const out = {};
const top = api.findPackageLocator(root + "/");
const info = top && api.getPackageInformation(top);
for (const [name, reference] of info ? info.packageDependencies : []) {
	if (reference === null) continue;
	const locator = Array.isArray(reference) ? { name: reference[0], reference: reference[1] } : { name, reference };
	const dep = api.getPackageInformation(locator);
	if (!dep || dep.packageLocation === info.packageLocation) continue;
	let pkg;
	try { pkg = JSON.parse(fs.readFileSync(path.join(dep.packageLocation, "package.json"), "utf8")); } catch { continue; }
	const bins = typeof pkg.bin === "string" ? { [String(pkg.name).replace(/^@[^/]+\\//, "")]: pkg.bin } : pkg.bin || {};
	for (const [bin, file] of Object.entries(bins)) out[bin] = path.join(dep.packageLocation, file);
}
process.stdout.write(JSON.stringify(out));
`;

const listed = new Map<string, ReadonlyMap<string, string>>();
const NONE: ReadonlyMap<string, string> = new Map();

/**
 * Binary name → its file (inside a zip or an unplugged folder) for a PnP project's direct
 * dependencies; empty for any other project (not remembered: an install may add a runtime), or
 * when the runtime cannot be loaded.
 */
export function pnpBins(root: string): ReadonlyMap<string, string> {
	const key = path.resolve(root);
	const runtime = findPnpRuntime(key);
	if (runtime === undefined) return NONE;
	const known = listed.get(key);
	if (known) return known;
	let bins: ReadonlyMap<string, string> = NONE;
	const { NODE_OPTIONS: _options, ...env } = process.env;
	const child = spawnSync(
		process.execPath,
		["--require", runtime.file, "-e", LIST_BINS, runtime.file, key],
		{ encoding: "utf8", env, timeout: 30_000 },
	);
	try {
		if (child.status === 0) bins = new Map(Object.entries(JSON.parse(child.stdout)));
	} catch {
		// Not a runtime this Node can load: the project's tools are not found, as without PnP.
	}
	listed.set(key, bins);
	return bins;
}
