// Host `ci` on this repository, cold and warm, against the same checks run one after another as
// plain npm scripts (what a team without the pipeline runs).
import { rmSync } from "node:fs";
import path from "node:path";
import { runProcess } from "../../ci/process.ts";

const root = path.resolve(import.meta.dirname, "../..");
const BASELINE_SCRIPTS = ["lint:biome", "lint:types", "test:unit", "build:app", "db:migrate:local"];

async function timed(
	file: string,
	args: string[],
): Promise<{ ms: number; ok: boolean; tail: string }> {
	const result = await runProcess({
		file,
		args,
		cwd: root,
		env: { ...process.env, CI: "", FORCE_COLOR: "0" },
	});
	return {
		ms: result.durationMs,
		ok: !result.failed,
		tail: (result.stdout + result.stderr).trimEnd().split("\n").slice(-3).join(" | "),
	};
}

const clearCaches = () => {
	for (const dir of [
		"node_modules/.cache/workers-pipeline",
		".open-next",
		".next",
		".wrangler/state-bench",
	]) {
		rmSync(path.join(root, dir), { recursive: true, force: true });
	}
};

export async function benchCi(): Promise<void> {
	const cli = path.join(root, "bin", "workers-pipeline.js");
	clearCaches();
	const cold = await timed(process.execPath, [cli, "ci", "--no-cache"]);
	const warm = await timed(process.execPath, [cli, "ci"]);
	clearCaches();
	let sequentialMs = 0;
	const parts: string[] = [];
	let sequentialOk = true;
	for (const script of BASELINE_SCRIPTS) {
		const run = await timed("npm", ["run", "--silent", script]);
		sequentialMs += run.ms;
		sequentialOk &&= run.ok;
		parts.push(`${script} ${(run.ms / 1000).toFixed(1)} s${run.ok ? "" : " (failed)"}`);
	}
	const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
	console.log("host ci on this repository vs the same checks as sequential npm scripts");
	console.log(
		`  ci cold (--no-cache):       ${s(cold.ms)}${cold.ok ? "" : `  (failed: ${cold.tail})`}`,
	);
	console.log(
		`  ci warm (nothing changed):  ${s(warm.ms)}${warm.ok ? "" : `  (failed: ${warm.tail})`}`,
	);
	console.log(
		`  sequential npm scripts:     ${s(sequentialMs)}${sequentialOk ? "" : "  (a script failed)"}`,
	);
	console.log(`    ${parts.join("; ")}`);
	console.log(`  cold / sequential = ${(cold.ms / sequentialMs).toFixed(2)}x`);
	console.log(`  warm / sequential = ${(warm.ms / sequentialMs).toFixed(2)}x  (target <= 0.6x)`);
}
