// Parse and bind KQL queries with Microsoft's own Kusto.Language (npm
// @kusto/language-service-next), the engine behind Azure Data Explorer's and Log Analytics'
// editors, against a database of the tables and column types given on stdin.
//
// stdin:  {"tables": [{"name": "AppEvents", "schema": "(TimeGenerated:datetime, ...)"}],
//          "queries": [{"name": "run-failed", "text": "AppEvents | where ..."}]}
// stdout: {"run-failed": [{"severity": "Error", "code": "KS142", "message": "...",
//          "start": 10, "length": 5}], ...}: every diagnostic of every query.
'use strict';

const fs = require('fs');
const path = require('path');

const pkg = path.dirname(require.resolve('@kusto/language-service-next/package.json'));
require(path.join(pkg, 'bridge.min.js')); // Bridge.NET runtime: defines the global Bridge
require(path.join(pkg, 'Kusto.Language.Bridge.min.js')); // defines the global Kusto

const Language = Kusto.Language;
const Symbols = Language.Symbols;

function database(tables) {
  const symbols = tables.map((t) => new Symbols.TableSymbol.$ctor7(t.name, t.schema, ''));
  return new Symbols.DatabaseSymbol.$ctor3('workspace', null, Bridge.toList(symbols), false);
}

function diagnostics(code) {
  const found = code.GetDiagnostics();
  const out = [];
  for (let i = 0; i < found.Count; i += 1) {
    const d = found.getItem(i);
    out.push({
      severity: String(d.Severity),
      code: d.Code,
      message: d.Message,
      start: d.Start,
      length: d.Length,
    });
  }
  return out;
}

const request = JSON.parse(fs.readFileSync(0, 'utf8'));
const globals = Language.GlobalState.Default.WithDatabase(database(request.tables));
const result = {};
for (const query of request.queries) {
  result[query.name] = diagnostics(Language.KustoCode.ParseAndAnalyze(query.text, globals));
}
process.stdout.write(JSON.stringify(result));
