import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listWorkspaceInputs } from "../../../ci/steps/_cache.ts";
import {
	detectFramework,
	detectPackageManager,
	explainScriptFailure,
	installCommand,
	type PackageManager,
	readPackageJson,
	readPackageManager,
	scriptCommand,
} from "../../../ci/steps/_toolchain.ts";
import { type Files, makeProject, removeProjects } from "../../support/project.ts";

afterAll(removeProjects);

const tree = (files: Files) => makeProject({ files, prefix: "wp-toolchain-" });

describe("detectPackageManager()", () => {
	it.each([
		[{}, [], "npm", undefined, "default"],
		[{}, ["package-lock.json"], "npm", undefined, "lockfile"],
		[{}, ["pnpm-lock.yaml"], "pnpm", undefined, "lockfile"],
		[{}, ["yarn.lock"], "yarn", undefined, "lockfile"],
		[{}, ["bun.lock"], "bun", undefined, "lockfile"],
		// corepack's field wins over a stray lockfile, and carries the version.
		[{ packageManager: "pnpm@9.15.0" }, ["package-lock.json"], "pnpm", "9.15.0", "packageManager"],
		[{ packageManager: "yarn@4.5.1+sha512.abc" }, [], "yarn", "4.5.1", "packageManager"],
		[{ packageManager: "deno@2" }, ["pnpm-lock.yaml"], "pnpm", undefined, "lockfile"],
	])("should read %j with %j as %s %s (%s)", (packageJson, files, name, version, source) => {
		const pm = detectPackageManager({ packageJson, files });
		expect([pm.name, pm.version, pm.source]).toEqual([name, version, source]);
	});

	it.each([
		["yarn@4.9.2", undefined, true, undefined],
		["yarn@1.22.22", undefined, false, undefined],
		// No version pinned: only berry reads .yarnrc.yml.
		[undefined, "nodeLinker: node-modules\n", true, undefined],
		[undefined, undefined, false, undefined],
		[
			"yarn@4.9.2",
			'yarnPath: ".yarn/releases/yarn-4.9.2.cjs"\n',
			true,
			".yarn/releases/yarn-4.9.2.cjs",
		],
	])(
		"should tell yarn berry from classic (%s, .yarnrc.yml %j)",
		(packageManager, yarnrc, berry, yarnPath) => {
			const pm = detectPackageManager({
				packageJson: packageManager ? { packageManager } : {},
				files: ["yarn.lock"],
				yarnrc,
			});
			expect([pm.name, pm.berry, pm.yarnPath]).toEqual(["yarn", berry, yarnPath]);
		},
	);
});

describe("readPackageJson()", () => {
	it("should read none as undefined, a byte order mark as npm does, and refuse what is not a JSON object", () => {
		const dir = tree({
			"bom/package.json": '\uFEFF{"scripts":{"test":"vitest"}}',
			"comma/package.json": '{"scripts":{"test":"vitest",}}',
			"array/package.json": "[]",
		});
		expect(readPackageJson(dir)).toBeUndefined();
		expect(readPackageJson(path.join(dir, "bom"))?.scripts).toEqual({ test: "vitest" });
		// Read as "no scripts", a broken manifest made `test` a skipped step and `ci` green.
		expect(() => readPackageJson(path.join(dir, "comma"))).toThrow(
			expect.objectContaining({
				code: "E_CONFIG_INVALID",
				message: expect.stringMatching(/comma\/package\.json is not valid JSON: .*line 1 column/),
			}),
		);
		expect(() => readPackageJson(path.join(dir, "array"))).toThrow(
			/array\/package\.json: expected a JSON object, found an array/,
		);
	});
});

describe("readPackageManager() in a workspace", () => {
	it.each([
		[
			{ "pnpm-workspace.yaml": "packages: [apps/*]\n", "pnpm-lock.yaml": "", "package.json": "{}" },
			"pnpm",
		],
		[
			{
				"package.json": '{"workspaces":["apps/*"],"packageManager":"yarn@4.9.2"}',
				"yarn.lock": "",
			},
			"yarn",
		],
		[{ "package.json": '{"workspaces":["apps/*"]}', "bun.lock": "" }, "bun"],
	])("should read an app without its own lockfile from its workspace root (%j)", (root, name) => {
		const dir = tree({ ...root, "apps/api/package.json": '{"name":"api"}' });
		const pm = readPackageManager(path.join(dir, "apps/api"));
		expect([pm.name, pm.lockfile !== undefined, pm.workspaceRoot]).toEqual([name, true, dir]);
	});

	it("should keep a pinned manager of the app, with the workspace's lockfile", () => {
		const dir = tree({
			"pnpm-workspace.yaml": "packages: [apps/*]\n",
			"pnpm-lock.yaml": "",
			"package.json": "{}",
			"apps/api/package.json": '{"packageManager":"pnpm@10.34.9"}',
		});
		expect(readPackageManager(path.join(dir, "apps/api"))).toEqual({
			name: "pnpm",
			version: "10.34.9",
			source: "packageManager",
			lockfile: "pnpm-lock.yaml",
			workspaceRoot: dir,
		});
	});

	it("should keep an app's own lockfile, and not climb out of a directory that is no workspace", () => {
		const dir = tree({
			"package.json": '{"workspaces":["apps/*"]}',
			"package-lock.json": "{}",
			"apps/api/package.json": "{}",
			"apps/api/pnpm-lock.yaml": "",
			"other/app/package.json": "{}",
		});
		expect(readPackageManager(path.join(dir, "apps/api"))).toMatchObject({ name: "pnpm" });
		expect(readPackageManager(path.join(dir, "apps/api")).workspaceRoot).toBeUndefined();
		// `other/` is not one of the workspaces, but the root still declares them: the root's manager.
		expect(readPackageManager(path.join(dir, "other/app")).name).toBe("npm");
	});
});

describe("listWorkspaceInputs()", () => {
	it("should list the workspace lockfile and manifest and the files of linked workspace packages", () => {
		const dir = tree({
			"package.json": '{"workspaces":["apps/*","packages/*"]}',
			"package-lock.json": "{}",
			"apps/api/package.json": '{"dependencies":{"@m/shared":"*","left-pad":"1"}}',
			"packages/shared/package.json": '{"name":"@m/shared","dependencies":{"@m/util":"*"}}',
			"packages/shared/index.js": "export const x = 1;\n",
			"packages/util/package.json": '{"name":"@m/util"}',
			"packages/util/util.js": "export const y = 2;\n",
			"packages/unused/index.js": "",
			"node_modules/@m/shared": { symlink: "packages/shared" },
			"node_modules/@m/util": { symlink: "packages/util" },
			"node_modules/left-pad/package.json": '{"name":"left-pad"}',
		});
		expect(listWorkspaceInputs(path.join(dir, "apps/api"))).toEqual([
			"../../package-lock.json",
			"../../package.json",
			"../../packages/shared/index.js",
			"../../packages/shared/package.json",
			"../../packages/util/package.json",
			"../../packages/util/util.js",
		]);
		expect(listWorkspaceInputs(dir)).toEqual([]);
	});

	it("should follow workspace packages by name in a Yarn PnP workspace (no node_modules links)", () => {
		const dir = tree({
			"package.json": '{"workspaces":["apps/*","packages/*"]}',
			"yarn.lock": "",
			".pnp.cjs": "",
			"apps/api/package.json": '{"dependencies":{"@m/shared":"workspace:^","left-pad":"1"}}',
			"packages/shared/package.json":
				'{"name":"@m/shared","dependencies":{"@m/util":"workspace:*"}}',
			"packages/shared/index.js": "export const x = 1;\n",
			"packages/util/package.json": '{"name":"@m/util"}',
			"packages/util/util.js": "export const y = 2;\n",
			"packages/unused/package.json": '{"name":"@m/unused"}',
		});
		expect(listWorkspaceInputs(path.join(dir, "apps/api"))).toEqual([
			"../../package.json",
			"../../packages/shared/index.js",
			"../../packages/shared/package.json",
			"../../packages/util/package.json",
			"../../packages/util/util.js",
			"../../yarn.lock",
		]);
	});
});

describe("explainScriptFailure()", () => {
	const npm: PackageManager = {
		name: "npm",
		version: undefined,
		source: "lockfile",
		lockfile: "package-lock.json",
	};
	it.each([
		["sh: 1: eslint: not found\nnpm error code 127", "`eslint` is not installed"],
		["/bin/sh: line 1: vitest: command not found", "`vitest` is not installed"],
		["bash: tsc: command not found", "`tsc` is not installed"],
		["command not found: eslint", "`eslint` is not installed"],
		['ERR_PNPM_RECURSIVE_EXEC_FIRST_FAIL Command "eslint" not found', "`eslint` is not installed"],
	])("should name the missing tool in %j", (output, expected) => {
		const why = explainScriptFailure({ argv: ["npm", "run", "lint"], output, pm: npm });
		expect(why).toContain(expected);
		expect(why).toContain("npm ci");
	});

	it("should say the manager could not be fetched, not that the script failed", () => {
		const yarn: PackageManager = {
			name: "yarn",
			version: "4.9.2",
			source: "packageManager",
			lockfile: "yarn.lock",
			berry: true,
		};
		const argv = scriptCommand(yarn, "lint", "/nonexistent");
		const why = explainScriptFailure({ argv, output: "npm error code ENOTFOUND\n", pm: yarn });
		expect(why).toMatch(
			/^yarn is not on PATH and `npx --yes --package @yarnpkg\/cli-dist@4\.9\.2 yarn` could not fetch it: install yarn 4\.9\.2/,
		);
	});

	it.each([
		["Error: 3 lint problems", ["npm", "run", "lint"]],
		// A real failure of a fetched manager's script is the script's own.
		["ETARGET in a test name", ["npm", "run", "lint"]],
	])("should add nothing to a check that failed on its own (%j)", (output, argv) => {
		expect(explainScriptFailure({ argv, output, pm: npm })).toBeUndefined();
	});
});

describe("scriptCommand() and installCommand()", () => {
	const pnpm: PackageManager = {
		name: "pnpm",
		version: "9.15.0",
		source: "packageManager",
		lockfile: "pnpm-lock.yaml",
	};
	it("should run a manager that is not on PATH from the registry at its pinned version", () => {
		expect(scriptCommand(pnpm, "lint", "/nonexistent")).toEqual([
			"npx",
			"--yes",
			"pnpm@9.15.0",
			"run",
			"lint",
		]);
		expect(installCommand(pnpm, "/nonexistent")).toEqual([
			"npx",
			"--yes",
			"pnpm@9.15.0",
			"install",
			"--frozen-lockfile",
		]);
	});
	it("should use npm ci with a lockfile and npm install without", () => {
		const npm: PackageManager = {
			name: "npm",
			version: undefined,
			source: "default",
			lockfile: undefined,
		};
		expect(installCommand(npm, "")).toEqual(["npm", "install"]);
		expect(installCommand({ ...npm, lockfile: "package-lock.json" }, "")).toEqual(["npm", "ci"]);
		expect(scriptCommand(npm, "test", "")).toEqual(["npm", "run", "test"]);
	});
	it("should fetch yarn berry as @yarnpkg/cli-dist (npm's `yarn` stops at 1.x), or run its checked-in release", () => {
		const berry: PackageManager = {
			name: "yarn",
			version: "4.9.2",
			source: "packageManager",
			lockfile: "yarn.lock",
			berry: true,
		};
		expect(scriptCommand(berry, "lint", "/nonexistent")).toEqual([
			"npx",
			"--yes",
			"--package",
			"@yarnpkg/cli-dist@4.9.2",
			"yarn",
			"run",
			"lint",
		]);
		const release = tree({ ".yarn/releases/yarn-4.9.2.cjs": "" });
		const yarnPath = path.join(release, ".yarn/releases/yarn-4.9.2.cjs");
		expect(scriptCommand({ ...berry, yarnPath }, "lint", "/nonexistent")).toEqual([
			"node",
			yarnPath,
			"run",
			"lint",
		]);
		expect(installCommand(berry, "/nonexistent").slice(-2)).toEqual(["install", "--immutable"]);
		const classic = { ...berry, version: "1.22.22", berry: false };
		expect(installCommand(classic, "/nonexistent")).toEqual([
			"npx",
			"--yes",
			"yarn@1.22.22",
			"install",
			"--frozen-lockfile",
		]);
	});
});

describe("detectFramework()", () => {
	it.each([
		[{ dependencies: { next: "16", "@opennextjs/cloudflare": "1" } }, "next"],
		[{ dependencies: { hono: "4" } }, "hono"],
		[{ devDependencies: { vite: "7" } }, "vite"],
		[{ dependencies: { astro: "5" } }, "astro"],
		[{ dependencies: { "@remix-run/cloudflare": "2" } }, "remix"],
		// React Router 7 on @cloudflare/vite-plugin: no Cloudflare package of its own, and vite.
		[
			{
				dependencies: { "react-router": "7" },
				devDependencies: { "@react-router/dev": "7", "@cloudflare/vite-plugin": "1", vite: "7" },
			},
			"remix",
		],
		[{}, "worker"],
		[undefined, "worker"],
	])("should read %j as %s", (pkg, framework) => {
		expect(detectFramework(pkg)).toBe(framework);
	});
});
