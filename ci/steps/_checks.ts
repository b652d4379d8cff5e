// What the project's own checks are (its format check, its architecture rules), decided from
// its files alone: lint and the format step plan them here, so they agree on one tree.
import { readdirSync } from "node:fs";
import path from "node:path";
import type { ProjectConfig } from "../config/schema.ts";
import { localBin } from "../process.ts";
import { readPackageJson, readPackageManager, scriptCommand } from "./_toolchain.ts";

/** A check command chosen for the project, and how to fix what it finds. */
export interface CheckPlan {
	file: string;
	args: string[];
	/** How the summary names it, e.g. `npm run format:check`. */
	display: string;
	fix: string;
	/** Where it came from: `format.command`, `format:check script`, `prettier`, `biome`. */
	source: string;
}

/** The scripts that are a project's format check, in the order one is picked. */
export const FORMAT_SCRIPTS = ["format:check", "check:format", "fmt:check", "prettier:check"];

/** The configured format check: `format.command`, else the older `lint.formatCommand`. */
export const configuredFormatCommand = (settings: ProjectConfig["settings"]) =>
	settings.format.command ?? settings.lint.formatCommand;

export interface ProjectFacts {
	root: string;
	scripts: Record<string, string>;
	/** Names of the files at the project root. */
	files: string[];
	hasPrettierKey: boolean;
	bin: (name: string) => string | undefined;
	/** How the project runs one of its scripts (its package manager); default `npm run`. */
	runScript?: (name: string) => [string, ...string[]];
}

/** The I/O half: what the planners look at. */
export function readProjectFacts(root: string, envPath?: string): ProjectFacts {
	const pm = readPackageManager(root);
	// No package.json: no scripts.
	const pkg: { scripts?: Record<string, string>; prettier?: unknown } = readPackageJson(root) ?? {};
	return {
		root,
		scripts: pkg.scripts ?? {},
		files: readdirSync(root),
		hasPrettierKey: pkg.prettier !== undefined,
		bin: (name) => localBin(root, name),
		runScript: (name) => scriptCommand(pm, name, envPath),
	};
}

const PRETTIER_CONFIG =
	/^(\.prettierrc(\.(json|ya?ml|json5|toml|[cm]?js|ts))?|prettier\.config\.[cm]?[jt]s)$/;
export const BIOME_CONFIG = /^biome\.jsonc?$/;
const DEPCRUISE_CONFIG = /^\.dependency-cruiser\.(c?js|mjs|json)$/;

const fromCommand = (command: readonly string[], root: string, source: string): CheckPlan => {
	const [file, ...args] = command as [string, ...string[]];
	return {
		file: file.includes("/") ? path.resolve(root, file) : file,
		args,
		display: command.join(" "),
		fix: "fix what it reports",
		source,
	};
};

/**
 * Pure: the project's own format check (config, `format:check` script, prettier or biome with
 * its config file), if any. A formatter that is only installed is no check: React Router's and
 * Astro's tooling bring prettier along, and the app never chose its rules. `lint` and the
 * `format` step both ask here, so they agree on one tree.
 */
export function planFormatCheck(
	facts: ProjectFacts,
	configured?: readonly string[],
): CheckPlan | undefined {
	if (configured) return fromCommand(configured, facts.root, "format.command");
	// The same scripts lint's format check knows, run with the project's package manager.
	const script = FORMAT_SCRIPTS.find((name) => facts.scripts[name]);
	if (script) {
		const run =
			facts.runScript ?? ((name: string) => ["npm", "run", name] as [string, ...string[]]);
		const [file, ...args] = run(script);
		const fix = facts.scripts.format
			? `\`${run("format").join(" ")}\``
			: "your formatter's write mode";
		return { file, args, display: [file, ...args].join(" "), fix, source: `${script} script` };
	}
	const formatter = configuredFormatter(facts);
	if (formatter?.name === "prettier") {
		return {
			file: formatter.file,
			args: ["--check", "."],
			display: "prettier --check .",
			fix: "`npx prettier --write .`",
			source: "prettier",
		};
	}
	if (formatter?.name === "biome") {
		return {
			file: formatter.file,
			args: ["format", "--colors=off", "."],
			display: "biome format .",
			fix: "`npx biome format --write .`",
			source: "biome",
		};
	}
	return undefined;
}

/**
 * Pure: the formatter the project chose, installed and configured (prettier with a config file or
 * a `prettier` key in package.json, else biome with biome.json[c]); prettier first, as the format
 * check takes it.
 */
export function configuredFormatter(
	facts: ProjectFacts,
): { name: "prettier" | "biome"; file: string } | undefined {
	const prettier = facts.bin("prettier");
	if (prettier && (facts.hasPrettierKey || facts.files.some((f) => PRETTIER_CONFIG.test(f))))
		return { name: "prettier", file: prettier };
	const biome = facts.bin("biome");
	if (biome && facts.files.some((f) => BIOME_CONFIG.test(f))) return { name: "biome", file: biome };
	return undefined;
}

/** Pure: the architecture check (config, else dependency-cruiser with its rules file), if any. */
export function planArchitectureCheck(
	facts: ProjectFacts,
	settings: ProjectConfig["settings"]["architecture"],
): CheckPlan | undefined {
	if (settings.command) return fromCommand(settings.command, facts.root, "architecture.command");
	const rules = facts.files.find((f) => DEPCRUISE_CONFIG.test(f));
	const depcruise = facts.bin("depcruise");
	if (!rules || !depcruise) return undefined;
	return {
		file: depcruise,
		args: ["--config", rules, "--output-type", "err", ...settings.paths],
		display: `depcruise --config ${rules} ${settings.paths.join(" ")}`,
		fix: `change the imports or the rules in ${rules}`,
		source: "dependency-cruiser",
	};
}
