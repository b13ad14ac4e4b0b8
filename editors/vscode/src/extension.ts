// The Pulse extension: starts `pulsec lsp` over stdio and connects it to `.pulse` files and
// Pulse JSON DAG files. Everything language-aware lives in the server.
import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";

let client: LanguageClient | undefined;

function documentSelector(config: vscode.WorkspaceConfiguration): LanguageClientOptions["documentSelector"] {
  const selector: NonNullable<LanguageClientOptions["documentSelector"]> = [{ scheme: "file", language: "pulse" }];
  if (config.get<boolean>("jsonDags", true)) {
    selector.push({ scheme: "file", language: "json", pattern: "**/{pipeline,*.pipeline}.json" });
  }
  return selector;
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  const config = vscode.workspace.getConfiguration("pulse");
  const command = config.get<string>("server.path", "pulsec") || "pulsec";
  const args = ["lsp", ...config.get<string[]>("server.extraArgs", [])];
  // No `transport`: the client then talks over the process's stdin/stdout without appending
  // `--stdio` to the arguments (`TransportKind.stdio` would; `pulsec lsp` accepts it too, but
  // an older pulsec exits with a usage error).
  const serverOptions: ServerOptions = {
    run: { command, args },
    debug: { command, args },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: documentSelector(config),
    outputChannelName: "Pulse",
  };
  client = new LanguageClient("pulse", "Pulse (pulsec lsp)", serverOptions, clientOptions);
  try {
    await client.start();
  } catch (error) {
    void vscode.window.showErrorMessage(
      `Pulse: could not start \`${command} lsp\` (${String(error)}). Set \`pulse.server.path\` to the pulsec binary.`,
    );
  }
  context.subscriptions.push({ dispose: () => void client?.stop() });
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  await start(context);
  context.subscriptions.push(
    vscode.commands.registerCommand("pulse.restartServer", async () => {
      await client?.stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("pulse.server") || event.affectsConfiguration("pulse.jsonDags")) {
        await client?.stop();
        await start(context);
      }
    }),
  );
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
