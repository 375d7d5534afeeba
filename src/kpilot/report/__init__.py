"""The weekly steering review and the chart specs it shares with the web app.

`review` words a `Review` from plain inputs (no I/O), `render` lays it out as HTML, PDF or Markdown, `charts` builds
the Vega-Lite specs that the pages draw in the browser and the review draws on the server. Nothing is imported here,
so that the pages, which import `charts` alone, do not load the PDF renderer.
"""
