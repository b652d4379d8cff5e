// Who is running and on which commit: the git and owner lookups every remote step records.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_REPORT_DIR } from "./constants.ts";

type Env = Readonly<Record<string, string | undefined>>;

const git = (root: string, args: readonly string[]): string | null => {
	try {
		return execFileSync("git", args, { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
			.toString()
			.trim();
	} catch {
		return null;
	}
};

/** The commit being built or deployed: GITHUB_SHA in Actions, else HEAD; null outside a repository. */
export function readGitSha(root: string, env: Env): string | null {
	if (env.GITHUB_SHA) return env.GITHUB_SHA;
	return git(root, ["rev-parse", "HEAD"]) || null;
}

// What workers-pipeline itself writes into a project (reports, builds, wrangler's local state):
// never a reason to call the tree dirty, or a build in CI (where reports are always written)
// would be stamped `<sha>-dirty` in every project that does not ignore them.
const PIPELINE_OUTPUTS = [DEFAULT_REPORT_DIR, ".open-next", ".wrangler"];

/** True when tracked files differ from HEAD or untracked, unignored files exist; null outside a repository. */
export function readGitDirty(root: string): boolean | null {
	const pathspec = [":/", ...PIPELINE_OUTPUTS.map((p) => `:(exclude)${p}`)];
	const status = git(root, ["status", "--porcelain", "--", ...pathspec]);
	return status === null ? null : status.length > 0;
}

/** Tracked files that differ from HEAD (git's paths, relative to the repository); null outside git. */
export function readChangedTrackedFiles(root: string): Set<string> | null {
	const out = git(root, ["diff", "--name-only", "HEAD", "--"]);
	return out === null ? null : new Set(out.split("\n").filter(Boolean));
}

/** Puts tracked files (git's paths, relative to the repository) back to HEAD's content; false on failure. */
export function restoreTrackedFiles(root: string, files: readonly string[]): boolean {
	if (files.length === 0) return true;
	return git(root, ["checkout", "HEAD", "--", ...files.map((f) => `:(top,literal)${f}`)]) !== null;
}

/** The repository's top directory (GitHub reads workflows only from its .github); null outside git. */
export function readGitTopLevel(root: string): string | null {
	return git(root, ["rev-parse", "--show-toplevel"]) || null;
}

/**
 * The branch pushes land on: origin's HEAD when the clone knows it, else `main` or `master`
 * when such a local branch exists, else the current branch; null outside git or with none.
 */
export function readDefaultBranch(root: string): string | null {
	const remote = git(root, ["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"]);
	if (remote) return remote.replace(/^origin\//, "");
	const local = git(root, ["for-each-ref", "--format=%(refname:short)", "refs/heads/"]);
	const branches = new Set((local ?? "").split("\n").filter(Boolean));
	for (const name of ["main", "master"]) if (branches.has(name)) return name;
	// A fresh `git init` has no branch ref yet: HEAD still names the one it will create.
	return git(root, ["symbolic-ref", "--quiet", "--short", "HEAD"]) || null;
}

/** The version a build is stamped with: the sha, `<sha>-dirty` for a dirty tree, null outside git. */
export function readGitVersion(root: string, env: Env): string | null {
	const sha = readGitSha(root, env);
	if (sha === null) return null;
	return readGitDirty(root) ? `${sha}-dirty` : sha;
}

/** Who is running: the CI actor and run when known, else user@host and the pid. */
export function describeOwner(env: Env): string {
	if (env.GITHUB_ACTIONS && env.GITHUB_ACTOR) {
		const repository = env.GITHUB_REPOSITORY ? ` ${env.GITHUB_REPOSITORY}` : "";
		return `${env.GITHUB_ACTOR} via GitHub Actions${repository} run ${env.GITHUB_RUN_ID ?? "?"}`;
	}
	let user = env.USER ?? env.USERNAME;
	if (!user) {
		try {
			user = os.userInfo().username;
		} catch {
			user = "unknown";
		}
	}
	return `${user}@${os.hostname()} pid ${process.pid}`;
}

// Outside a repository: the directories a project never hashes (dependencies, build output, reports).
const SKIP_DIRS = new Set([
	"node_modules",
	".git",
	".next",
	".open-next",
	".wrangler",
	DEFAULT_REPORT_DIR,
	".tools",
	".dagger",
]);

/** The project's files: git's view (tracked and untracked, not ignored) when it is a repository. */
export function listProjectFiles(root: string): string[] {
	try {
		const out = execFileSync(
			"git",
			["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
			{
				cwd: root,
				stdio: ["ignore", "pipe", "ignore"],
				maxBuffer: 64 * 1024 * 1024,
			},
		);
		return [...new Set(out.toString("utf8").split("\0").filter(Boolean))].sort();
	} catch {
		const walk = (dir: string): string[] =>
			readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
				const rel = dir ? `${dir}/${e.name}` : e.name;
				if (e.isDirectory()) return SKIP_DIRS.has(e.name) ? [] : walk(rel);
				return e.isFile() ? [rel] : [];
			});
		return walk("").sort();
	}
}
