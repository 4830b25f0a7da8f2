// Our driver for the original LLM Sizer (github.com/AMD-melliott/llm-sizer): it runs THEIR code from the user's
// checkout and contains none of it. It imports the function their CLI's `calculate` command runs
// (buildCalculateResult in src/cli/commands/calculate.ts) and calls it once per request, so one Node process
// answers many requests and each answer is exactly what `npx tsx src/cli/index.ts calculate ... -o json` prints.
//
// Run by pytest_llmsizer/adapters/llm_sizer_run.py as
//     node --import tsx llm_sizer_driver.mjs CHECKOUT_DIR        (cwd = CHECKOUT_DIR, so `tsx` is theirs)
// stdin:  a JSON array of their CalculateOptions objects
// stdout: a JSON array, one {"result": <their CalculateResult>} or {"error": "message"} per request, same order.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const checkout = process.argv[2];
if (!checkout) {
  process.stderr.write('usage: node --import tsx llm_sizer_driver.mjs CHECKOUT_DIR < requests.json\n');
  process.exit(2);
}
const entry = join(checkout, 'src', 'cli', 'commands', 'calculate.ts');
let calculate;
try {
  ({ buildCalculateResult: calculate } = await import(pathToFileURL(entry).href));
} catch (err) {
  process.stderr.write(`cannot import ${entry}: ${err && err.message ? err.message : err}\n`);
  process.exit(3);
}
if (typeof calculate !== 'function') {
  process.stderr.write(`${entry} does not export buildCalculateResult (another LLM Sizer version?)\n`);
  process.exit(3);
}

const requests = JSON.parse(readFileSync(0, 'utf8'));
if (!Array.isArray(requests)) {
  process.stderr.write('stdin must be a JSON array of calculate options\n');
  process.exit(2);
}
const answers = requests.map((options) => {
  try {
    return { result: calculate(options) };
  } catch (err) {
    return { error: err && err.message ? err.message : String(err) };
  }
});
process.stdout.write(JSON.stringify(answers));
