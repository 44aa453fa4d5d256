// The CDK app (cdk.json: "app"). Stacks are in lib/infra; deployment settings come from context.
// `-c nag=true` runs cdk-nag's AwsSolutions and Serverless packs on synth, as a security review would
// (README "Security review: cdk-nag"); cdk-nag is a dev dependency, loaded only then.
import { App, Validations } from 'aws-cdk-lib';
import { buildApp } from '../lib/infra/app.ts';

const app = new App();
buildApp(app);
const nag = app.node.tryGetContext('nag');
if (nag === true || nag === 'true') {
  const { AwsSolutionsChecks, ServerlessChecks } = await import('cdk-nag');
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }), new ServerlessChecks(app, { verbose: true }));
}
