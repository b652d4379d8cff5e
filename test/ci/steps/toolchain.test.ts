import { describe, expect, it } from "vitest";
import {
	detectFramework,
	detectPackageManager,
	installCommand,
	type PackageManager,
	scriptCommand,
} from "../../../ci/steps/_toolchain.ts";

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
});

describe("detectFramework()", () => {
	it.each([
		[{ dependencies: { next: "16", "@opennextjs/cloudflare": "1" } }, "next"],
		[{ dependencies: { hono: "4" } }, "hono"],
		[{ devDependencies: { vite: "7" } }, "vite"],
		[{ dependencies: { astro: "5" } }, "astro"],
		[{ dependencies: { "@remix-run/cloudflare": "2" } }, "remix"],
		[{}, "worker"],
		[undefined, "worker"],
	])("should read %j as %s", (pkg, framework) => {
		expect(detectFramework(pkg)).toBe(framework);
	});
});
