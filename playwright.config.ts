// Playwright for the example app. `workers-pipeline e2e` serves the build locally (OpenNext's
// preview on a local D1 migrated and seeded from seed.sql) and passes its URL in
// PLAYWRIGHT_TEST_BASE_URL, the browser (Debian's Chromium) in WORKERS_PIPELINE_CHROMIUM.
import { defineConfig } from "@playwright/test";

export default defineConfig({
	testDir: "e2e",
	workers: 1,
	forbidOnly: Boolean(process.env.CI),
	use: {
		launchOptions: {
			executablePath: process.env.WORKERS_PIPELINE_CHROMIUM,
			// Closed network: no background connections that the machine would refuse.
			args: ["--disable-gpu", "--disable-quic", "--disable-background-networking"],
		},
	},
});
