// Node ESM, plain `node app.mjs`: the package's default import.
import * as shoal from 'shoal';
import { runSearch } from './search.mjs';

console.log(JSON.stringify(await runSearch(shoal)));
