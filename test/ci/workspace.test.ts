import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listWorkspaceMembers } from "../../ci/workspace.ts";
import { makeProject, removeProjects } from "../support/project.ts";

afterAll(removeProjects);

/** A tree of files by path; every `dir/package.json` makes a package. */
const tree = (files: Record<string, string>) => makeProject({ files, prefix: "wp-workspace-" });

const PACKAGES = {
	"apps/api/package.json": "{}",
	"apps/web/package.json": "{}",
	"apps/notes/README.md": "not a package",
	"packages/db/package.json": "{}",
	"packages/ui/package.json": "{}",
	"packages/ui/forms/package.json": "{}",
	"packages/ui/node_modules/x/package.json": "{}",
	"tools/package.json": "{}",
};

describe("listWorkspaceMembers()", () => {
	it.each([
		{ shape: "npm array", root: { workspaces: ["apps/*", "packages/db"] } },
		{
			shape: "yarn { packages }",
			root: { workspaces: { packages: ["apps/*", "./packages/db/"] } },
		},
		{ shape: "a negated pattern", root: { workspaces: ["apps/*", "packages/*", "!packages/u*"] } },
	])("$shape: the directories with a package.json", ({ root }) => {
		const dir = tree({ ...PACKAGES, "package.json": JSON.stringify(root) });
		expect(listWorkspaceMembers(dir).map((d) => path.relative(dir, d))).toEqual([
			"apps/api",
			"apps/web",
			"packages/db",
		]);
	});

	it("pnpm-workspace.yaml: quoted entries, comments, ** at any depth, never node_modules", () => {
		const dir = tree({
			...PACKAGES,
			"package.json": "{}",
			"pnpm-workspace.yaml":
				"packages:\n  # the apps\n  - 'apps/*'\n  - \"packages/**\" # all of them\n  - tools\ncatalog:\n  - not-a-package\n",
		});
		expect(listWorkspaceMembers(dir).map((d) => path.relative(dir, d))).toEqual([
			"apps/api",
			"apps/web",
			"packages/db",
			"packages/ui",
			"packages/ui/forms",
			"tools",
		]);
	});

	it("no workspace declared: none", () => {
		expect(listWorkspaceMembers(tree({ ...PACKAGES, "package.json": "{}" }))).toEqual([]);
	});
});
