// Dagger's exclude/include/ignore patterns: moby's patternmatcher as used through fsutil by
// core/directory.go (withDirectory exclude) and core/modfunc.go (an argument's `ignore`).
import { type Dirent, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface Pattern {
	negate: boolean;
	re: RegExp;
}

// patternmatcher: `**` spans directories, `*` and `?` stay inside one path element, `!` re-includes.
export const parsePatterns = (patterns: readonly string[]): Pattern[] =>
	patterns
		.map((p) => p.trim())
		.filter((p) => p !== "" && !p.startsWith("#"))
		.map((raw) => {
			const negate = raw.startsWith("!");
			let p = (negate ? raw.slice(1) : raw).replace(/^\/+/, "").replace(/\/+$/, "");
			p = p.replace(/^\.\//, "");
			let re = "";
			for (let i = 0; i < p.length; i++) {
				const c = p[i] as string;
				if (c === "*" && p[i + 1] === "*") {
					i++;
					if (p[i + 1] === "/") {
						i++;
						re += "(?:.*/)?";
					} else re += ".*";
				} else if (c === "*") re += "[^/]*";
				else if (c === "?") re += "[^/]";
				else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
			}
			return { negate, re: new RegExp(`^${re}$`) };
		});

// patternmatcher.MatchesOrParentMatches: a pattern matching a parent directory matches its children.
const matches = (pattern: Pattern, path: string): boolean => {
	if (pattern.re.test(path)) return true;
	const parts = path.split("/");
	for (let i = 1; i < parts.length; i++)
		if (pattern.re.test(parts.slice(0, i).join("/"))) return true;
	return false;
};

// The last matching pattern decides (patternmatcher.Matches).
export const isExcluded = (patterns: Pattern[], path: string): boolean => {
	let excluded = false;
	for (const p of patterns) if (matches(p, path)) excluded = !p.negate;
	return excluded;
};

// fsutil walks into an excluded directory only when a negation could re-include something in it.
const mayReinclude = (patterns: Pattern[]) => patterns.some((p) => p.negate);

/** Relative paths (files, symlinks, and directories) kept by exclude/include, in walk order. */
export const walkFiltered = (
	root: string,
	exclude: readonly string[],
	include: readonly string[] = [],
): { path: string; entry: Dirent }[] => {
	const ex = parsePatterns(exclude);
	const inc = parsePatterns(include);
	const out: { path: string; entry: Dirent }[] = [];
	const walk = (rel: string) => {
		const entries = readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) =>
			a.name < b.name ? -1 : 1,
		);
		for (const entry of entries) {
			const path = rel ? `${rel}/${entry.name}` : entry.name;
			const excluded = isExcluded(ex, path);
			const included = inc.length === 0 || inc.some((p) => matches(p, path));
			if (entry.isDirectory()) {
				if (excluded && !mayReinclude(ex)) continue;
				const before = out.length;
				if (!excluded && included) out.push({ path, entry });
				walk(path);
				// A directory kept only for what a negation re-included inside it.
				if ((excluded || !included) && out.length > before) out.splice(before, 0, { path, entry });
			} else if (!excluded && included) out.push({ path, entry });
		}
	};
	walk("");
	return out;
};

// Git's .gitignore rules as patternmatcher patterns relative to the root (core/directory.go
// filter with gitignore): a pattern without an inner slash matches at any depth below its file.
export const gitignorePatterns = (root: string): string[] => {
	const out: string[] = [];
	const files = walkFiltered(root, ["**/.git"]).filter(
		(e) => e.entry.isFile() && e.entry.name === ".gitignore",
	);
	for (const { path } of files) {
		const base = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
		for (const raw of readFileSync(join(root, path), "utf8").split(/\r?\n/)) {
			const line = raw.replace(/\s+$/, "");
			if (line === "" || line.startsWith("#")) continue;
			const negate = line.startsWith("!");
			let p = (negate ? line.slice(1) : line).replace(/\/+$/, "");
			const anchored = p.includes("/");
			p = p.replace(/^\/+/, "");
			const rel = anchored ? p : `**/${p}`;
			out.push(`${negate ? "!" : ""}${base ? `${base}/` : ""}${rel}`);
		}
	}
	return out;
};
