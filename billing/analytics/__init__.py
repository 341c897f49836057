"""Analytics on the warehouse: the dbt project and how to run it (:mod:`dbt_project`), and the
`billing report` answers read from the marts (:mod:`report`)."""
