import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

// bin/workers-pipeline.js must get far enough on an old Node (this machine's system Node is 20)
// to hand over to Node 24 from .tools/node, or say what to install.

const REPO = path.resolve(import.meta.dirname, "../..");
const BIN = path.join(REPO, "bin/workers-pipeline.js");
const VERSION = (
	JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string }
).version;

function systemNode(): { file: string; major: number } | undefined {
	for (const file of ["/usr/bin/node", "/usr/local/bin/node"]) {
		const probe = spawnSync(file, ["-p", "process.versions.node"], { encoding: "utf8" });
		if (probe.status === 0) return { file, major: Number(probe.stdout.split(".")[0]) };
	}
	return undefined;
}

const old = systemNode();

describe("bin/workers-pipeline.js", () => {
	it.runIf(old !== undefined && old.major < 22)(
		"hands over from an old system Node to Node 24 in .tools/node",
		() => {
			const result = spawnSync(old?.file as string, [BIN, "--version"], { encoding: "utf8" });
			expect(result.stderr).not.toContain("SyntaxError");
			expect(result.status, result.stderr).toBe(0);
			expect(result.stdout.trim()).toBe(VERSION);
		},
	);

	it("runs with this Node and prints the package version", () => {
		const result = spawnSync(process.execPath, [BIN, "--version"], { encoding: "utf8" });
		expect(result.status, result.stderr).toBe(0);
		expect(result.stdout.trim()).toBe(VERSION);
	});
});
