// One process per run: node js_peer.mjs PEER JOB.json -> one JSON line per case on stdout.
// JOB = {"domains": [...], "cases": [...]}; each peer gets the protected list as its domains.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// The peers live in bench/.peers/node_modules (the working directory), not beside this file.
const require = createRequire(`${process.cwd()}/package.json`);
const [peer, jobPath] = process.argv.slice(2);
const job = JSON.parse(readFileSync(jobPath, 'utf8'));
const domains = job.domains;
const labels = [...new Set(domains.map((d) => d.split('.')[0]))];
const suffixes = [...new Set(domains.map((d) => d.split('.').slice(1).join('.')))];

let judge;
if (peer === 'mailcheck') {
  const Mailcheck = require('mailcheck');
  judge = (email) => Mailcheck.suggest(email, domains, labels, suffixes);
} else if (peer === 'zootools') {
  const zoo = require('@zootools/email-spell-checker');
  const checker = zoo.default || zoo;
  judge = (email) =>
    checker.run({ email, domains, secondLevelDomains: labels, topLevelDomains: suffixes });
} else if (peer === 'email-misspelled') {
  // Its CommonJS build does not load under "type": "module": import the ESM entry it exports.
  const home = `${process.cwd()}/node_modules/email-misspelled`;
  const manifest = JSON.parse(readFileSync(`${home}/package.json`, 'utf8'));
  const entry = manifest.exports['.'].import;
  const emailMisspelled = (await import(pathToFileURL(`${home}/${entry}`).href)).default;
  const check = emailMisspelled({ domains });
  judge = (email) => {
    const found = check(email);
    return found && found.length ? { domain: found[0].suggest.split('@').pop() } : null;
  };
} else {
  throw new Error(`unknown peer ${peer}`);
}

const out = [];
for (const domain of job.cases) {
  let suggestion = null;
  try {
    const found = judge(`x@${domain}`);
    if (found && found.domain && found.domain !== domain) suggestion = found.domain;
  } catch (e) {
    suggestion = null;
  }
  out.push(JSON.stringify({ domain, flagged: suggestion !== null, suggestion }));
}
process.stdout.write(out.join('\n') + '\n');
