import { afterEach, describe, expect, it } from "vitest";
import { isAlive, trackProcesses } from "./processes.ts";

const processes = trackProcesses();
afterEach(() => processes.stopAll());
const idle = {
	file: process.execPath,
	args: ["-e", "setInterval(() => {}, 1000)"],
	cwd: process.cwd(),
};

describe("trackProcesses()", () => {
	it("tracks a started process until it exits, and stopAll kills it by PID", async () => {
		const started = await processes.start(idle);
		expect(processes.running()).toEqual([started.pid]);
		expect(isAlive(started.pid)).toBe(true);
		processes.stopAll();
		const result = await started.done;
		expect(result).toMatchObject({ signal: "SIGKILL", failed: true });
		expect(isAlive(started.pid)).toBe(false);
		expect(processes.running()).toEqual([]);
	});

	it("kill() signals the process group", async () => {
		const started = await processes.start(idle);
		started.kill("SIGTERM");
		expect((await started.done).signal).toBe("SIGTERM");
	});

	it("forgets a process that ran to completion", async () => {
		const result = await processes.run({ ...idle, args: ["-e", "console.log(1)"] });
		expect(result).toMatchObject({ exitCode: 0, stdout: "1\n" });
		expect(processes.running()).toEqual([]);
	});

	it("rejects start() of a file that does not exist, saying why", async () => {
		await expect(processes.start({ ...idle, file: "./no-such-bin" })).rejects.toThrow(/ENOENT/);
	});
});
