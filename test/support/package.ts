import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
	cpSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	statSync,
	symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

// `npm pack` of this repository, once per source state, for tests that install workers-pipeline
// into another project the way a user does (npm, pnpm, yarn from the tarball).

export const REPO = path.resolve(import.meta.dirname, "../..");
/** What `npm pack` reads: the package's files plus what prepack's build needs. */
const PACK_INPUTS = [
	"package.json",
	"bin",
	"ci",
	"scripts",
	"tsconfig.json",
	"tsconfig.build.json",
	"README.md",
	"docs",
];

function hashInputs(): string {
	const hash = createHash("sha256");
	const visit = (rel: string) => {
		const full = path.join(REPO, rel);
		if (!existsSync(full)) return;
		if (statSync(full).isDirectory()) {
			for (const name of readdirSync(full).sort()) visit(path.join(rel, name));
			return;
		}
		hash.update(`${rel}\0`).update(readFileSync(full)).update("\0");
	};
	for (const input of PACK_INPUTS) visit(input);
	return hash.digest("hex").slice(0, 16);
}

/** Environment for package managers: this Node first on PATH, its headers for native addons. */
export function installEnv(): NodeJS.ProcessEnv {
	const nodeDir = path.dirname(path.dirname(process.execPath));
	const env: NodeJS.ProcessEnv = {
		...process.env,
		PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
		npm_config_audit: "false",
		npm_config_fund: "false",
		npm_config_update_notifier: "false",
	};
	if (existsSync(path.join(nodeDir, "include", "node"))) env.npm_config_nodedir = nodeDir;
	for (const key of Object.keys(env)) {
		// vitest's own npm_* / lifecycle variables must not leak into the installs.
		if (key.startsWith("npm_lifecycle") || key === "npm_package_json" || key === "INIT_CWD")
			delete env[key];
	}
	return env;
}

/**
 * The packed tarball (path), built by `npm pack` in a copy of the sources (so prepack's build never
 * touches this checkout's dist/ while other tests run it); reused while the sources are unchanged.
 */
export function packWorkersPipeline(): string {
	const cache = path.join(tmpdir(), `workers-pipeline-pack-${hashInputs()}`);
	const version = (
		JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string }
	).version;
	const tarball = path.join(cache, `workers-pipeline-${version}.tgz`);
	if (existsSync(tarball)) return tarball;
	const work = mkdtempSync(path.join(tmpdir(), "wp-pack-"));
	try {
		const src = path.join(work, "src");
		mkdirSync(src);
		for (const input of PACK_INPUTS) {
			if (existsSync(path.join(REPO, input)))
				cpSync(path.join(REPO, input), path.join(src, input), { recursive: true });
		}
		symlinkSync(path.join(REPO, "node_modules"), path.join(src, "node_modules"), "dir");
		const result = spawnSync("npm", ["pack", "--pack-destination", work, "--loglevel=error"], {
			cwd: src,
			env: installEnv(),
			encoding: "utf8",
		});
		if (result.status !== 0)
			throw new Error(`npm pack failed:\n${result.stdout}\n${result.stderr}`);
		mkdirSync(cache, { recursive: true });
		// rename is atomic: a concurrent test sees either no tarball or the whole one.
		renameSync(path.join(work, path.basename(tarball)), tarball);
		return tarball;
	} finally {
		rmSync(work, { recursive: true, force: true });
	}
}
