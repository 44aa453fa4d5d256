// The CDK app: one GlobalTableStack in the first region listed, one RegionStack per region. bin/app.ts
// runs it for `cdk synth|deploy`; tests build it in-process with their own context.
import { type App, Tags } from 'aws-cdk-lib';
import { readConfig, type DeploymentConfig } from './config.ts';
import { GlobalTableStack } from './global-table-stack.ts';
import { RegionStack } from './region-stack.ts';

export interface XmppEdgeStacks {
  config: DeploymentConfig;
  table: GlobalTableStack;
  regions: Map<string, RegionStack>;
}

export function buildApp(app: App, account = process.env.CDK_DEFAULT_ACCOUNT): XmppEdgeStacks {
  const config = readConfig(app.node);
  // One tag on everything, so Cost Explorer can show what xmpp-edge costs (docs/architecture.md "Cost is a feature").
  Tags.of(app).add('project', 'xmpp-edge');
  const [home] = config.regions;
  // Regions are concrete (a global table needs them); the account may stay unknown for an offline synth.
  const table = new GlobalTableStack(app, `${config.stackPrefix}-Table`, {
    env: { account, region: home },
    tableName: config.tableName,
    regions: config.regions,
    description: `xmpp-edge: the global DynamoDB table ${config.tableName}, replicated to ${config.regions.join(', ')}`,
  });
  const regions = new Map<string, RegionStack>();
  for (const region of config.regions) {
    const stack = new RegionStack(app, `${config.stackPrefix}-${region}`, {
      env: { account, region },
      config,
      description: `xmpp-edge in ${region}: WebSocket API, ordered ingest, sweeper, tenant changes, alarms`,
    });
    // The table's replica in this region must exist before the functions use it.
    stack.addStackDependency(table);
    regions.set(region, stack);
  }
  return { config, table, regions };
}
