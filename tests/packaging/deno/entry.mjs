// `deno run --allow-read entry.mjs <specifier>`, one export path per process.
import { runSearch } from './search.mjs';

const specifier = Deno.args[0];
try {
  console.log(JSON.stringify({ ok: true, value: await runSearch(await import(specifier)) }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: { name: err.name, message: err.message } }));
}
