// Validates Kubernetes manifests against the Kubernetes OpenAPI schemas, as
// compiled into the kubernetes-models package (required fields, types,
// formats). Unknown fields are not caught here: deploy/validate_test.go
// decodes every manifest strictly into the k8s.io/api Go types for that.
//
//   npm ci --prefix deploy/schema
//   node deploy/schema/validate.mjs deploy/kubernetes/*.yaml …
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";

const models = {
  "apps/v1/Deployment": Deployment,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
};

let passed = 0;
let failed = 0;
for (const file of process.argv.slice(2)) {
  parseAllDocuments(readFileSync(file, "utf8")).forEach((doc, i) => {
    if (doc.errors.length > 0) {
      console.log(`FAIL ${file}#${i}: YAML: ${doc.errors[0].message}`);
      failed++;
      return;
    }
    const obj = doc.toJS();
    if (obj == null) return;
    const where = `${file}#${i} ${obj.kind}/${obj.metadata?.name}`;
    const Model = models[`${obj.apiVersion}/${obj.kind}`];
    if (!Model) {
      console.log(`FAIL ${where}: no schema for ${obj.apiVersion} ${obj.kind} in validate.mjs`);
      failed++;
      return;
    }
    try {
      new Model(obj).validate();
      console.log(`ok   ${where}`);
      passed++;
    } catch (e) {
      console.log(`FAIL ${where}: ${e.message}`);
      failed++;
    }
  });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
