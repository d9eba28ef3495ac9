"""`panoptic bench report`: at what size the database starts to hurt, as a PDF and JSON.

`run` measures and analyses, `measure` holds what it measures beyond `bench read`,
`projection` fits curves and finds crossings (pure functions), `pdf` draws the report.
"""
