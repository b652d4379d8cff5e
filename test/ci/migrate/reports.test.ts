// Remote commands write their report on every path, errors included.
import { describe, expect, it } from "vitest";
import { ENV, setupLoopbackApi } from "./_support.ts";

const loopback = setupLoopbackApi({ log: () => {} });

describe("remote command reports", () => {
	it.each([
		["migrate", ["migrate", "--env", ENV]],
		["plan", ["plan", "--env", ENV]],
		["restore", ["restore", "--env", ENV, "--bookmark", "b"]],
		["baseline", ["baseline", "--env", ENV, "--through", "0001"]],
	])("%s writes .reports/<command>.json when the token is refused", async (command, argv) => {
		const p = loopback.project();
		const run = await p.cli(argv, { env: { CLOUDFLARE_API_TOKEN: "tok-wrong-0123456789" } });
		expect(run.code).toBe(2);
		if (command === "plan") return; // plan reports only under CI or --report-dir
		const report = p.report(command);
		expect(report.ok).toBe(false);
		expect(report.findings[0]?.message).toMatch(/Invalid access token/);
	});
});
