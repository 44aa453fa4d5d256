// The CDK app (cdk.json: "app"). Stacks are in lib/infra; deployment settings come from context.
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/infra/app.ts';

buildApp(new App());
