// harmony's built-in tools, as `SystemContent::with_browser_tool()` and `with_python_tool()` add them
// to the system message (never the developer message). The text is harmony's own, byte for byte;
// the upstream fixtures test_browser_tool_only / test_browser_and_python_tool pin it.
import type { SystemContent, ToolNamespaceConfig } from './conversation.ts';

export const BROWSER_NAMESPACE: ToolNamespaceConfig = {
  name: 'browser',
  description:
    'Tool for browsing.\nThe `cursor` appears in brackets before each browsing display: `[{cursor}]`.\nCite information from the tool using the following format:\n`【{cursor}†L{line_start}(-L{line_end})?】`, for example: `【6†L9-L11】` or `【8†L3】`.\nDo not quote more than 10 words directly from the tool output.\nsources=web (default: web)',
  tools: [
    {
      name: 'search',
      description: 'Searches for information related to `query` and displays `topn` results.',
      parameters: {
        type: 'object',
        properties: {
          query: {
            type: 'string',
          },
          topn: {
            type: 'number',
            default: 10,
          },
          source: {
            type: 'string',
          },
        },
        required: ['query'],
      },
    },
    {
      name: 'open',
      description:
        'Opens the link `id` from the page indicated by `cursor` starting at line number `loc`, showing `num_lines` lines.\nValid link ids are displayed with the formatting: `【{id}†.*】`.\nIf `cursor` is not provided, the most recent page is implied.\nIf `id` is a string, it is treated as a fully qualified URL associated with `source`.\nIf `loc` is not provided, the viewport will be positioned at the beginning of the document or centered on the most relevant passage, if available.\nUse this function without `id` to scroll to a new location of an opened page.',
      parameters: {
        type: 'object',
        properties: {
          id: {
            type: ['number', 'string'],
            default: -1,
          },
          cursor: {
            type: 'number',
            default: -1,
          },
          loc: {
            type: 'number',
            default: -1,
          },
          num_lines: {
            type: 'number',
            default: -1,
          },
          view_source: {
            type: 'boolean',
            default: false,
          },
          source: {
            type: 'string',
          },
        },
      },
    },
    {
      name: 'find',
      description: 'Finds exact matches of `pattern` in the current page, or the page given by `cursor`.',
      parameters: {
        type: 'object',
        properties: {
          pattern: {
            type: 'string',
          },
          cursor: {
            type: 'number',
            default: -1,
          },
        },
        required: ['pattern'],
      },
    },
  ],
};

export const PYTHON_NAMESPACE: ToolNamespaceConfig = {
  name: 'python',
  description:
    "Use this tool to execute Python code in your chain of thought. The code will not be shown to the user. This tool should be used for internal reasoning, but not for code that is intended to be visible to the user (e.g. when creating plots, tables, or files).\n\nWhen you send a message containing Python code to python, it will be executed in a stateful Jupyter notebook environment. python will respond with the output of the execution or time out after 120.0 seconds. The drive at '/mnt/data' can be used to save and persist user files. Internet access for this session is UNKNOWN. Depends on the cluster.",
  tools: [],
};

/** The system content with the browser and/or python namespace added (a new object). */
export function withBuiltinTools(system: SystemContent, tools: { browser?: boolean; python?: boolean }): SystemContent {
  const namespaces = { ...(system.tools ?? {}) };
  if (tools.browser) namespaces.browser = BROWSER_NAMESPACE;
  if (tools.python) namespaces.python = PYTHON_NAMESPACE;
  return { ...system, tools: namespaces };
}
