// What the Node relying parties share: their settings from the environment (set by
// tests/rp_libraries.rs), the state kept between the two halves of a sign-in, and the output.
import { readFileSync, writeFileSync } from "node:fs";

export const settings = {
  issuer: process.env.RP_ISSUER,
  clientId: process.env.RP_CLIENT_ID,
  clientSecret: process.env.RP_CLIENT_SECRET,
  redirectUri: process.env.RP_REDIRECT_URI,
  postLogoutRedirectUri: process.env.RP_POST_LOGOUT_REDIRECT_URI,
  scope: "openid email profile offline_access",
};

const stateFile = process.env.RP_STATE_FILE;
export const keep = (value) => writeFileSync(stateFile, JSON.stringify(value));
export const kept = () => JSON.parse(readFileSync(stateFile, "utf8"));

// `start` prints the authorization URL; `finish CALLBACK_URL` prints what the library got.
export async function run({ start, finish }) {
  const [command, callback] = process.argv.slice(2);
  try {
    if (command === "start") {
      process.stdout.write(JSON.stringify({ url: String(await start()) }));
    } else if (command === "finish") {
      process.stdout.write(JSON.stringify(await finish(new URL(callback))));
    } else {
      throw new Error("usage: start | finish CALLBACK_URL");
    }
  } catch (e) {
    process.stderr.write(`${e?.stack ?? e}\n${e?.cause ? JSON.stringify(e.cause) : ""}\n`);
    process.exit(1);
  }
}
