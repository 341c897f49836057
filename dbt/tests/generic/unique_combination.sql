{% test unique_combination(model, columns) %}
-- Fails with every combination of `columns` that occurs more than once.
select {{ columns | join(', ') }}, count() as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having occurrences > 1
{% endtest %}
