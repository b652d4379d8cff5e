import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
	describeOwner,
	listProjectFiles,
	readDefaultBranch,
	readGitDirty,
	readGitSha,
	readGitVersion,
} from "../../ci/git.ts";

const dirs: string[] = [];
afterEach(() => {
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-git-"));
	dirs.push(dir);
	return dir;
};
const git = (cwd: string, ...args: string[]) =>
	execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
		cwd,
		stdio: ["ignore", "pipe", "ignore"],
	})
		.toString()
		.trim();

/** A repository with one commit of a.txt and .gitignore (ignoring *.log). */
function repo(): { root: string; sha: string } {
	const root = tempDir();
	git(root, "init", "-q");
	writeFileSync(path.join(root, "a.txt"), "a\n");
	writeFileSync(path.join(root, ".gitignore"), "*.log\n");
	git(root, "add", "-A");
	git(root, "commit", "-q", "-m", "one");
	return { root, sha: git(root, "rev-parse", "HEAD") };
}

describe("readDefaultBranch()", () => {
	it("reads origin's HEAD in a clone, whatever the local branch", () => {
		const { root } = repo();
		git(root, "branch", "-M", "trunk");
		const clone = tempDir();
		execFileSync("git", ["clone", "-q", root, clone]);
		git(clone, "checkout", "-q", "-b", "feature");
		expect(readDefaultBranch(clone)).toBe("trunk");
	});

	it("takes master when there is no main and no remote, even from another branch", () => {
		const { root } = repo();
		git(root, "branch", "-M", "master");
		git(root, "checkout", "-q", "-b", "feature");
		expect(readDefaultBranch(root)).toBe("master");
	});

	it("takes the branch a fresh repository will create, and null outside git", () => {
		const root = tempDir();
		git(root, "init", "-q", "-b", "develop");
		expect(readDefaultBranch(root)).toBe("develop");
		expect(readDefaultBranch(tempDir())).toBeNull();
	});
});

describe("readGitSha()", () => {
	it("reads HEAD", () => {
		const { root, sha } = repo();
		expect(readGitSha(root, {})).toMatch(/^[0-9a-f]{40}$/);
		expect(readGitSha(root, {})).toBe(sha);
	});

	it("prefers GITHUB_SHA (Actions checks out a merge commit)", () => {
		expect(readGitSha(repo().root, { GITHUB_SHA: "f".repeat(40) })).toBe("f".repeat(40));
	});

	it("is null outside a repository", () => {
		expect(readGitSha(tempDir(), {})).toBeNull();
	});
});

describe("readGitDirty() / readGitVersion()", () => {
	it.each<{ label: string; change: (root: string) => void; dirty: boolean }>([
		{ label: "a clean checkout", change: () => {}, dirty: false },
		{
			label: "an ignored file",
			change: (r) => writeFileSync(path.join(r, "debug.log"), "x"),
			dirty: false,
		},
		{
			label: "an edited tracked file",
			change: (r) => writeFileSync(path.join(r, "a.txt"), "b\n"),
			dirty: true,
		},
		{
			label: "a new untracked file",
			change: (r) => writeFileSync(path.join(r, "b.txt"), "b\n"),
			dirty: true,
		},
		{
			label: "the pipeline's own reports and build outputs, not ignored",
			change: (r) => {
				for (const dir of [".reports", ".open-next", ".wrangler"]) {
					mkdirSync(path.join(r, dir));
					writeFileSync(path.join(r, dir, "x.json"), "{}");
				}
			},
			dirty: false,
		},
		{
			label: "an untracked file beside the reports",
			change: (r) => {
				mkdirSync(path.join(r, ".reports"));
				writeFileSync(path.join(r, ".reports", "ci.json"), "{}");
				writeFileSync(path.join(r, "c.txt"), "c\n");
			},
			dirty: true,
		},
	])("$label → dirty $dirty", ({ change, dirty }) => {
		const { root, sha } = repo();
		change(root);
		expect(readGitDirty(root)).toBe(dirty);
		expect(readGitVersion(root, {})).toBe(dirty ? `${sha}-dirty` : sha);
	});

	it("is null outside a repository", () => {
		const dir = tempDir();
		expect(readGitDirty(dir)).toBeNull();
		expect(readGitVersion(dir, {})).toBeNull();
	});
});

describe("describeOwner()", () => {
	it.each([
		[
			{
				GITHUB_ACTIONS: "true",
				GITHUB_ACTOR: "alice",
				GITHUB_REPOSITORY: "acme/shop",
				GITHUB_RUN_ID: "9813",
			},
			"alice via GitHub Actions acme/shop run 9813",
		],
		[{ GITHUB_ACTIONS: "true", GITHUB_ACTOR: "alice" }, "alice via GitHub Actions run ?"],
		[{ USER: "bob" }, `bob@${hostname()} pid ${process.pid}`],
		[{ USERNAME: "carol" }, `carol@${hostname()} pid ${process.pid}`],
		// An actor without GITHUB_ACTIONS is not trusted to be CI.
		[{ GITHUB_ACTOR: "mallory", USER: "bob" }, `bob@${hostname()} pid ${process.pid}`],
	])("%j → %s", (env, owner) => {
		expect(describeOwner(env)).toBe(owner);
	});
});

describe("listProjectFiles()", () => {
	it("lists tracked and untracked files, not ignored ones, sorted", () => {
		const { root } = repo();
		writeFileSync(path.join(root, "b.txt"), "b\n");
		writeFileSync(path.join(root, "debug.log"), "x\n");
		mkdirSync(path.join(root, "src"));
		writeFileSync(path.join(root, "src", "c.ts"), "c\n");
		expect(listProjectFiles(root)).toEqual([".gitignore", "a.txt", "b.txt", "src/c.ts"]);
	});

	it("walks the tree outside a repository, skipping dependencies and build output", () => {
		const root = tempDir();
		writeFileSync(path.join(root, "a.txt"), "a\n");
		for (const dir of ["node_modules", ".next", ".reports", "src"]) {
			mkdirSync(path.join(root, dir));
			writeFileSync(path.join(root, dir, "f.js"), "f\n");
		}
		expect(listProjectFiles(root)).toEqual(["a.txt", "src/f.js"]);
	});
});
