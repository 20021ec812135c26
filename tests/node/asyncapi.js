// Checks an AsyncAPI document with the AsyncAPI project's own parser, and each message's
// examples against that message's payload schema (the parser checks them only in AsyncAPI 2).
// Prints one JSON object for tests/test_docs.py: {"diagnostics": [{severity, code, message,
// path}], "examples": [{message, errors}], "document": the YAML as plain data}. A diagnostic's
// severity is 0 for an error, 1 a warning, 2 information, 3 a hint.
// Usage: node asyncapi.js <file>
const fs = require('fs');

let Parser, Ajv, yaml;
try {
  ({ Parser } = require('@asyncapi/parser'));
  Ajv = require('ajv');
  yaml = require('js-yaml');
} catch (error) {
  process.stderr.write(`${error.message}\nrun: npm ci --prefix tests/node\n`);
  process.exit(2);
}

function checkExamples(document) {
  // the parser's extensions (x-parser-...) and ours (x-setting) are not JSON Schema keywords
  const ajv = new Ajv({ strict: false, allErrors: true });
  return document.allMessages().all().flatMap((message) => message.examples().all().map((example) => {
    const valid = ajv.validate(message.payload().json(), example.payload());
    return { message: message.name(), errors: valid ? [] : ajv.errors };
  }));
}

async function main(file) {
  const text = fs.readFileSync(file, 'utf8');
  const { document, diagnostics } = await new Parser().parse(text, { source: file });
  process.stdout.write(JSON.stringify({
    diagnostics: diagnostics.map(({ severity, code, message, path }) => ({ severity, code, message, path })),
    examples: document ? checkExamples(document) : [],
    document: yaml.load(text),
  }));
}

main(process.argv[2]).catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
