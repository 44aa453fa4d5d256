// One Lambda function of xmpp-edge with the project's defaults in one place (runtime, arm64, local
// esbuild bundling to a small ESM file, log retention), and the two grants a function can need, each
// in one call that also passes the name or endpoint it grants: bindTable() and bindConnections().
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface XmppFunctionProps extends Omit<NodejsFunctionProps, 'entry' | 'runtime' | 'architecture' | 'logGroup' | 'logRetention'> {
  /** The file under functions/, without extension: "connect", "ingest", … */
  entryName: string;
  logRetention: RetentionDays;
}

/** Table access of one function: item actions on the table, Query on the named indexes. */
export interface TableAccess {
  actions: readonly string[];
  indexes?: readonly string[];
}

/** Management API methods on @connections: POST sends a frame, DELETE closes, GET asks if alive. */
export type ConnectionMethod = 'POST' | 'GET' | 'DELETE';

export class XmppFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: XmppFunctionProps) {
    const { entryName, logRetention, environment, bundling, ...rest } = props;
    super(scope, id, {
      entry: `${ROOT}functions/${entryName}.ts`,
      projectRoot: ROOT,
      depsLockFilePath: `${ROOT}package-lock.json`,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.seconds(10),
      logGroup: new LogGroup(scope, `${id}Logs`, { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY }),
      environment: { NODE_OPTIONS: '--enable-source-maps', ...environment },
      bundling: {
        // Bundled by the esbuild in node_modules; `cdk synth` needs neither Docker nor a network.
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // CommonJS dependencies call require(); an ES module has none unless it makes one.
        banner: "import{createRequire as __xmppEdgeRequire}from'node:module';const require=__xmppEdgeRequire(import.meta.url);",
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // The SDK is bundled too: the deployed code runs the SDK version the tests ran, not the runtime's.
        externalModules: [],
        tsconfig: `${ROOT}tsconfig.json`,
        ...bundling,
      },
      ...rest,
    });
  }

  /** Grants exactly `access` on the table (and its named indexes) and passes the table's name in `envName`. */
  bindTable(table: ITableV2, access: TableAccess, envName = 'TABLE_NAME'): this {
    this.addToRolePolicy(new PolicyStatement({ actions: [...access.actions], resources: [table.tableArn] }));
    if (access.indexes?.length) {
      this.addToRolePolicy(
        new PolicyStatement({ actions: ['dynamodb:Query'], resources: access.indexes.map((name) => `${table.tableArn}/index/${name}`) }),
      );
    }
    this.addEnvironment(envName, table.tableName);
    return this;
  }

  /**
   * Grants execute-api:ManageConnections with `methods` on the connections of this region's stage, and
   * passes its management endpoint as MANAGEMENT_ENDPOINT (the endpoint a session records).
   *
   * With `otherRegions`, the same methods on the same stage name of any API in those regions of this
   * account: a session records its own region's endpoint, and a stanza for a user connected elsewhere
   * is posted there. The other regions' API ids are made by their own stacks and are not known here,
   * hence `*` for the API id only; region, account, stage, method and the @connections path stay fixed.
   */
  bindConnections(stage: WebSocketStage, methods: readonly ConnectionMethod[], otherRegions: readonly string[] = []): this {
    const stack = Stack.of(this);
    const arn = (region: string, apiId: string, method: string) =>
      `arn:${stack.partition}:execute-api:${region}:${stack.account}:${apiId}/${stage.stageName}/${method}/@connections/*`;
    this.addToRolePolicy(
      new PolicyStatement({
        actions: ['execute-api:ManageConnections'],
        resources: [
          ...methods.map((m) => arn(stack.region, stage.api.apiId, m)),
          ...otherRegions.flatMap((region) => methods.map((m) => arn(region, '*', m))),
        ],
      }),
    );
    this.addEnvironment('MANAGEMENT_ENDPOINT', stage.callbackUrl);
    return this;
  }
}
